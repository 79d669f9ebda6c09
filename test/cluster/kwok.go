package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Fake nodes are kwok's (sigs.k8s.io/kwok), run as the child process kg-kwok
// (its own Go module in kwok/, built next to this binary by build.sh).

const (
	// kwok manages the nodes that carry this annotation (kwokctl's convention).
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	// Kinds kwok serves from custom resources, so tests can configure one pod:
	// a PortForward to a port the test opened, a Logs or Attach file of its own.
	kwokCRDs = "Attach,Logs,PortForward"
	// Pod IPs that kwok hands out (nothing dials them).
	kwokPodCIDR = "10.244.0.0/16"
)

// kwokSetup is what `up` needs to start kg-kwok.
type kwokSetup struct {
	binary      string
	args        []string
	env         []string
	kubeletURL  string // https://127.0.0.1:PORT, kg-kwok's kubelet endpoint
	podLogsFile string // CRI log file behind logs and attach of every pod without its own Logs/Attach
}

// kwokBinary is kg-kwok next to this binary.
func kwokBinary() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(filepath.Dir(self), "kg-kwok")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("kg-kwok not found next to %s (test/cluster/build.sh builds both): %w", self, err)
	}
	return bin, nil
}

// prepareKwok writes kg-kwok's config and kubeconfig into dir/kwok and returns
// how to start it.
func prepareKwok(dir, kubeconfigPath string, p *pki) (*kwokSetup, error) {
	bin, err := kwokBinary()
	if err != nil {
		return nil, err
	}
	state := filepath.Join(dir, "kwok")
	workDir := filepath.Join(state, "work")
	if err := os.MkdirAll(workDir, 0o700); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	podLogs := filepath.Join(state, "pod.log")
	if err := os.WriteFile(podLogs, nil, 0o644); err != nil {
		return nil, err
	}
	// Every pod's exec runs the requested command on this machine in workDir;
	// logs and attach read podLogs (CRI log format), unless a Logs/Attach
	// object names the pod. Port-forward needs a PortForward object per pod.
	conf := `apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterExec
metadata:
  name: kg-local
spec:
  execs:
  - local:
      workDir: ` + strconv.Quote(workDir) + `
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: kg-local
spec:
  logs:
  - logsFile: ` + strconv.Quote(podLogs) + `
    follow: true
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterAttach
metadata:
  name: kg-local
spec:
  attaches:
  - logsFile: ` + strconv.Quote(podLogs) + `
`
	confFile := filepath.Join(state, "kwok.yaml")
	if err := writeFileAtomic(confFile, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	return &kwokSetup{
		binary: bin,
		args: []string{
			"--listen=" + listen,
			"--tls-cert-file=" + p.kubeletCert,
			"--tls-private-key-file=" + p.kubeletKey,
			"--kubeconfig=" + kubeconfigPath,
			"--state-dir=" + state,
			"--crds=" + kwokCRDs,
			"--die-with-parent",
			"--",
			"--manage-nodes-with-annotation-selector=" + kwokNodeAnnotation + "=fake",
			"--node-ip=127.0.0.1",
			"--node-port=" + strconv.Itoa(port),
			"--node-lease-duration-seconds=40",
			"--cidr=" + kwokPodCIDR,
			"--config=" + confFile,
		},
		// kwok also reads $KWOK_WORKDIR/kwok.yaml (default ~/.kwok): keep a
		// developer's own kwok config out of the tests.
		env:         append(os.Environ(), "KWOK_WORKDIR="+filepath.Join(state, "home")),
		kubeletURL:  "https://" + listen,
		podLogsFile: podLogs,
	}, nil
}

// nodeNames are the names of n fake nodes.
func nodeNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = "kwok-node-" + strconv.Itoa(i)
	}
	return names
}

// createNode creates a fake node for kwok: untainted, so that ordinary
// Deployments schedule onto it.
func createNode(client *http.Client, server, name string) error {
	node := map[string]any{
		"apiVersion": "v1",
		"kind":       "Node",
		"metadata": map[string]any{
			"name":        name,
			"annotations": map[string]string{kwokNodeAnnotation: "fake"},
			"labels": map[string]string{
				"type":                   "kwok",
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
			},
		},
	}
	body, err := json.Marshal(node)
	if err != nil {
		return err
	}
	resp, err := client.Post(server+"/api/v1/nodes", "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("create node %s: %s: %s", name, resp.Status, msg)
	}
	return nil
}

// nodeSchedulable reports whether the node is Ready and carries no
// node.kubernetes.io/* taint (the node-lifecycle controller's not-ready or
// unreachable taints), i.e. the scheduler will place pods on it.
func nodeSchedulable(client *http.Client, server, name string) bool {
	resp, err := client.Get(server + "/api/v1/nodes/" + name)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	var node struct {
		Spec struct {
			Taints []struct{ Key string } `json:"taints"`
		} `json:"spec"`
		Status struct {
			Conditions []struct{ Type, Status string } `json:"conditions"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&node); err != nil {
		return false
	}
	for _, t := range node.Spec.Taints {
		if strings.HasPrefix(t.Key, "node.kubernetes.io/") {
			return false
		}
	}
	for _, c := range node.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// kubeletHealthy reports whether kg-kwok's kubelet endpoint answers /healthz
// over TLS verified with the test CA (no credentials: kwok asks for none).
func kubeletHealthy(ctx context.Context, caPEM []byte, url string) bool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// startNodes starts kube-scheduler and kg-kwok, creates the fake nodes and
// waits until they are schedulable. It returns the default pod log file.
func (c *cluster) startNodes(ctx context.Context, stop context.CancelCauseFunc, server string, client *http.Client, p *pki, token string) (string, error) {
	began := time.Now()
	schedKubeconfig := filepath.Join(c.dir, "scheduler.kubeconfig")
	kwokKubeconfig := filepath.Join(c.dir, "kwok.kubeconfig")
	for _, path := range []string{schedKubeconfig, kwokKubeconfig} {
		if err := writeFileAtomic(path, kubeconfig(server, p.caPEM, token), 0o600); err != nil {
			return "", err
		}
	}
	sched, err := c.startChild(stop, schedulerLogName, func(out io.Writer) (*child, error) {
		return startSelf("kube-scheduler", "scheduler", schedulerArgs(schedKubeconfig), out)
	})
	if err != nil {
		return "", err
	}
	kw, err := prepareKwok(c.dir, kwokKubeconfig, p)
	if err != nil {
		return "", err
	}
	kwok, err := c.startChild(stop, kwokLogName, func(out io.Writer) (*child, error) {
		return startChild("kg-kwok", kw.binary, kw.binary, kw.args, kw.env, out)
	})
	if err != nil {
		return "", err
	}
	c.logf("started kube-scheduler (pid %d) and kg-kwok (pid %d, kubelet %s)", sched.cmd.Process.Pid, kwok.cmd.Process.Pid, kw.kubeletURL)

	names := nodeNames(c.nodes)
	for _, name := range names {
		if err := createNode(client, server, name); err != nil {
			return "", err
		}
	}
	if err := poll(ctx, func() bool { return kubeletHealthy(ctx, p.caPEM, kw.kubeletURL) }); err != nil {
		return "", err
	}
	for _, name := range names {
		if err := poll(ctx, func() bool { return nodeSchedulable(client, server, name) }); err != nil {
			return "", err
		}
	}
	c.logf("%d kwok node(s) ready after %s", len(names), time.Since(began).Round(time.Millisecond))
	return kw.podLogsFile, nil
}
