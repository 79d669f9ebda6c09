package main

import (
	"fmt"
	"path/filepath"
	"strconv"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as in cmd/kube-apiserver
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as in cmd/kube-apiserver
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
)

const (
	serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
	serviceClusterIPs    = "10.96.0.0/16"
)

// apiserverArgs are the kube-apiserver flags for a cluster in dir.
func apiserverArgs(dir string, port int, etcdURL, tokenFile string, p *pki) []string {
	return []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1", // required on a host without a default route
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(dir, "apiserver-certs"),
		"--tls-cert-file=" + p.servingCert,
		"--tls-private-key-file=" + p.servingKey,
		"--client-ca-file=" + p.caCert,
		"--authorization-mode=Node,RBAC",
		"--token-auth-file=" + tokenFile,
		"--service-account-issuer=" + serviceAccountIssuer,
		"--service-account-key-file=" + p.saPub,
		"--service-account-signing-key-file=" + p.saKey,
		"--service-cluster-ip-range=" + serviceClusterIPs,
		// Kubelets are kwok's front (kg-kwok) on 127.0.0.1: verify it with the
		// test CA, present a client certificate, and dial the InternalIP (the
		// Hostname address is the node name, which does not resolve).
		"--kubelet-certificate-authority=" + p.caCert,
		"--kubelet-client-certificate=" + p.kubeletClientCert,
		"--kubelet-client-key=" + p.kubeletClientKey,
		"--kubelet-preferred-address-types=InternalIP",
		// The default plugin set (NamespaceLifecycle, ServiceAccount, PodSecurity,
		// ResourceQuota, webhooks, ...) stays on; NodeRestriction is added as in kubeadm.
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		// The apiserver would publish 127.0.0.1 as the endpoint of the
		// "kubernetes" Service, which Endpoints validation rejects (every 10s:
		// "may not be in the loopback range"). Nothing in a node-less cluster
		// dials that Service, so do not maintain its endpoints.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"-v=0",
	}
}

// runAPIServer runs kube-apiserver in this process and returns when it stops.
// NewAPIServerCommand installs the SIGTERM/SIGINT handler (SetupSignalContext)
// itself: it must be created at most once per process, and the way to stop it
// is a SIGTERM to this process.
func runAPIServer(args []string) error {
	cmd := apiserverapp.NewAPIServerCommand()
	cmd.SetArgs(args)
	// cli.RunNoErrOutput = cmd.Execute() plus the log setup of cli.Run.
	if err := cli.RunNoErrOutput(cmd); err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	return nil
}
