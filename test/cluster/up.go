package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"golang.org/x/sys/unix"
	"k8s.io/component-base/version"
)

// readyLine is printed as `READY <json>` on stdout once the cluster is usable.
type readyLine struct {
	Server     string `json:"server"`
	Kubeconfig string `json:"kubeconfig"`
	CAFile     string `json:"caFile"`
	Token      string `json:"token"`
	Version    string `json:"version"`
	// Names of the fake nodes (--nodes), all Ready; empty without nodes.
	Nodes []string `json:"nodes"`
	// With nodes: the CRI log file that logs and attach read for every pod
	// that has no Logs/Attach object of its own.
	PodLogsFile string `json:"podLogsFile,omitempty"`
}

// Causes of a stop that are not failures (exit 0).
var errParentGone = errors.New("parent process exited")

type stopSignal struct{ sig os.Signal }

func (s stopSignal) Error() string { return "received " + s.sig.String() }

// cluster is the state of `up`.
type cluster struct {
	dir     string
	nodes   int
	verbose bool
	log     io.Writer // our own progress messages: the original stderr

	etcd     *embed.Etcd
	apiDone  chan struct{} // closed when kube-apiserver has returned (nil: never started)
	children []*child      // controller-manager, scheduler, kg-kwok

	apiserverLog, etcdLog string
}

// Log files of the child processes in DIR (unless --verbose).
const (
	kcmLogName       = "controller-manager.log"
	schedulerLogName = "scheduler.log"
	kwokLogName      = "kwok.log"
)

func (c *cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.log, "kg-testcluster: "+format+"\n", args...)
}

func runUp(argv []string) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	dirFlag := fs.String("dir", "", "directory for all state: etcd data, certs, kubeconfig, logs (created if missing)")
	dieWithParent := fs.Bool("die-with-parent", false, "stop the cluster when the parent process exits")
	verbose := fs.Bool("verbose", false, "send component logs to stderr instead of files in DIR")
	nodes := fs.Int("nodes", 0, "number of fake kwok nodes; > 0 also starts kube-scheduler and kg-kwok")
	if err := fs.Parse(argv); err != nil {
		return 2
	}
	if *dirFlag == "" || fs.NArg() > 0 || *nodes < 0 || *nodes > 100 {
		fmt.Fprintln(os.Stderr, "usage: kg-testcluster up --dir DIR [--nodes N (0-100)] [--die-with-parent] [--verbose]")
		return 2
	}

	// Catch SIGTERM/SIGINT before anything else so that a signal during
	// startup is a clean stop. kube-apiserver registers its own handler too
	// (signal.Notify delivers to both); that one stops the apiserver.
	sigCh := make(chan os.Signal, 4)
	signal.Notify(sigCh, syscall.SIGTERM, syscall.SIGINT)

	dir, err := filepath.Abs(*dirFlag)
	if err == nil {
		err = os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kg-testcluster: %v\n", err)
		return 1
	}
	c := &cluster{
		dir:          dir,
		nodes:        *nodes,
		verbose:      *verbose,
		log:          os.Stderr,
		apiserverLog: filepath.Join(dir, "apiserver.log"),
		etcdLog:      filepath.Join(dir, "etcd.log"),
	}
	if !c.verbose {
		if err := c.redirectStderr(); err != nil {
			fmt.Fprintf(os.Stderr, "kg-testcluster: %v\n", err)
			return 1
		}
	}

	ctx, stop := context.WithCancelCause(context.Background())
	go func() { stop(stopSignal{<-sigCh}) }()
	if *dieWithParent {
		watchParent(func() { stop(errParentGone) })
	}

	code := 0
	if err := c.start(ctx, stop); err != nil && ctx.Err() == nil {
		c.logf("startup failed: %v", err)
		code = 1
	} else {
		<-ctx.Done()
		cause := context.Cause(ctx)
		var sig stopSignal
		if errors.As(cause, &sig) || errors.Is(cause, errParentGone) {
			c.logf("%v, stopping", cause)
		} else {
			c.logf("%v", cause)
			code = 1
		}
	}
	c.shutdown(ctx)
	if code != 0 {
		c.dumpLogs()
	}
	return code
}

// start brings the cluster up and prints the READY line. Failures of the
// long-running parts after start are reported through stop.
func (c *cluster) start(ctx context.Context, stop context.CancelCauseFunc) error {
	began := time.Now()
	p, err := generatePKI(c.dir)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	token := randomToken()
	tokenFile := filepath.Join(c.dir, "tokens.csv")
	// token,user,uid,"groups": system:masters is cluster-admin.
	if err := writeFileAtomic(tokenFile, []byte(token+`,kubegate-admin,kubegate-admin,"system:masters"`+"\n"), 0o600); err != nil {
		return err
	}

	etcdLog := c.etcdLog
	if c.verbose {
		etcdLog = "stderr"
	}
	c.logf("starting etcd (state and logs in %s)", c.dir)
	var etcdURL string
	c.etcd, etcdURL, err = startEtcd(c.dir, etcdLog)
	if err != nil {
		return err
	}
	c.logf("etcd ready at %s after %s", etcdURL, time.Since(began).Round(time.Millisecond))
	go func() {
		if err, ok := <-c.etcd.Err(); ok && err != nil {
			stop(fmt.Errorf("etcd failed: %w", err))
		}
	}()

	if err := ctx.Err(); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	server := "https://127.0.0.1:" + strconv.Itoa(port)
	args := apiserverArgs(c.dir, port, etcdURL, tokenFile, p)
	c.logf("starting kube-apiserver on %s", server)
	c.apiDone = make(chan struct{})
	go func() {
		err := runAPIServer(args)
		close(c.apiDone)
		if err == nil {
			err = errors.New("kube-apiserver stopped")
		}
		stop(err)
	}()

	client := httpsClient(p.caPEM, token)
	if err := poll(ctx, func() bool { return get(client, server+"/readyz") == http.StatusOK }); err != nil {
		return err
	}
	c.logf("kube-apiserver ready on %s after %s", server, time.Since(began).Round(time.Millisecond))

	// The controller-manager gets its own copy: admin.kubeconfig appearing
	// is a readiness signal too.
	kcmKubeconfig := filepath.Join(c.dir, "controller-manager.kubeconfig")
	if err := writeFileAtomic(kcmKubeconfig, kubeconfig(server, p.caPEM, token), 0o600); err != nil {
		return err
	}
	kcm, err := c.startChild(stop, kcmLogName, func(out io.Writer) (*child, error) {
		return startSelf("kube-controller-manager", "controller-manager", controllerManagerArgs(kcmKubeconfig, p), out)
	})
	if err != nil {
		return err
	}
	c.logf("started kube-controller-manager (pid %d), waiting for the default ServiceAccount", kcm.cmd.Process.Pid)

	// The default ServiceAccount is created by the controller-manager: its
	// existence proves the controllers run (and that tokens can be minted).
	saURL := server + "/api/v1/namespaces/default/serviceaccounts/default"
	if err := poll(ctx, func() bool { return get(client, saURL) == http.StatusOK }); err != nil {
		return err
	}

	var nodes []string
	var podLogsFile string
	if c.nodes > 0 {
		if podLogsFile, err = c.startNodes(ctx, stop, server, client, p, token); err != nil {
			return err
		}
		nodes = nodeNames(c.nodes)
	}

	adminKubeconfig := filepath.Join(c.dir, "admin.kubeconfig")
	if err := writeFileAtomic(adminKubeconfig, kubeconfig(server, p.caPEM, token), 0o600); err != nil {
		return err
	}
	line, err := json.Marshal(readyLine{
		Server:      server,
		Kubeconfig:  adminKubeconfig,
		CAFile:      p.caCert,
		Token:       token,
		Version:     version.Get().GitVersion,
		Nodes:       append([]string{}, nodes...), // [] rather than null
		PodLogsFile: podLogsFile,
	})
	if err != nil {
		return err
	}
	c.logf("cluster ready after %s (logs in %s)", time.Since(began).Round(time.Millisecond), c.dir)
	fmt.Fprintf(os.Stdout, "READY %s\n", line)
	return nil
}

// shutdown stops the child processes, kube-apiserver and etcd, in that
// order, each with a bounded wait.
func (c *cluster) shutdown(ctx context.Context) {
	began := time.Now()
	childrenStopped := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, ch := range c.children {
			wg.Go(func() {
				// None holds state worth a long goodbye (no leader locks).
				ch.stop(time.Second)
			})
		}
		wg.Wait()
		if len(c.children) > 0 {
			c.logf("%d child process(es) stopped after %s", len(c.children), time.Since(began).Round(time.Millisecond))
		}
		close(childrenStopped)
	}()

	if c.apiDone != nil {
		var sig stopSignal
		if !errors.As(context.Cause(ctx), &sig) {
			// Not stopped by a signal: kube-apiserver only stops through its
			// own signal handler, so send ourselves one.
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		}
		select {
		case <-c.apiDone:
			c.logf("kube-apiserver stopped after %s", time.Since(began).Round(time.Millisecond))
		case <-time.After(8 * time.Second):
			c.logf("kube-apiserver did not stop within 8s; exiting anyway")
		}
	}
	<-childrenStopped

	if c.etcd != nil {
		closed := make(chan struct{})
		go func() { c.etcd.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			c.logf("etcd did not close within 5s; exiting anyway")
		}
	}
	c.logf("stopped in %s", time.Since(began).Round(time.Millisecond))
}

// redirectStderr points file descriptor 2 (klog, etcd's grpc logs, Go
// panics) at DIR/apiserver.log, keeping the original stderr for our own
// messages.
func (c *cluster) redirectStderr() error {
	f, err := os.OpenFile(c.apiserverLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	orig, err := unix.Dup(2)
	if err != nil {
		return err
	}
	unix.CloseOnExec(orig)
	if err := unix.Dup3(int(f.Fd()), 2, 0); err != nil {
		return err
	}
	c.log = os.NewFile(uintptr(orig), "stderr")
	return nil
}

// dumpLogs copies the tail of the component logs to our stderr after a failure.
func (c *cluster) dumpLogs() {
	if c.verbose {
		return
	}
	paths := []string{c.etcdLog, c.apiserverLog}
	for _, name := range []string{kcmLogName, schedulerLogName, kwokLogName} {
		paths = append(paths, filepath.Join(c.dir, name))
	}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		fmt.Fprintf(c.log, "--- last %d lines of %s ---\n%s\n", len(lines), path, strings.Join(lines, "\n"))
	}
}

func kubeconfig(server string, caPEM []byte, token string) []byte {
	return []byte(`apiVersion: v1
kind: Config
clusters:
- name: kg-testcluster
  cluster:
    server: ` + server + `
    certificate-authority-data: ` + base64.StdEncoding.EncodeToString(caPEM) + `
users:
- name: kubegate-admin
  user:
    token: ` + token + `
contexts:
- name: kg-testcluster
  context:
    cluster: kg-testcluster
    user: kubegate-admin
current-context: kg-testcluster
`)
}

func httpsClient(caPEM []byte, token string) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: bearer{token: token, rt: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool},
		}},
	}
}

type bearer struct {
	token string
	rt    http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.rt.RoundTrip(r)
}

// get returns the HTTP status of a GET, or 0 if the request failed.
func get(client *http.Client, url string) int {
	resp, err := client.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// poll calls ok every 100ms until it returns true or ctx is done.
func poll(ctx context.Context, ok func() bool) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if ok() {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}
