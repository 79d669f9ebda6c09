package main

import (
	"fmt"
	"os"

	"k8s.io/component-base/cli"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

// controllerManagerArgs are the kube-controller-manager flags for a cluster.
func controllerManagerArgs(kubeconfig string, p *pki) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--service-account-private-key-file=" + p.saKey,
		"--root-ca-file=" + p.caCert,
		"--use-service-account-credentials=true",
		"--cluster-signing-cert-file=" + p.caCert,
		"--cluster-signing-key-file=" + p.caKey,
		"--secure-port=0", // no HTTPS endpoint: nothing scrapes it and it would need a port
		"--kube-api-qps=100",
		"--kube-api-burst=200",
		"-v=0",
	}
}

// runControllerManager is the `controller-manager` subcommand: the child
// process that `up` starts. It runs kube-controller-manager with args.
func runControllerManager(args []string) int {
	// Belt and braces next to Pdeathsig: exit when the parent goes away.
	watchParent(func() { os.Exit(0) })
	cmd := kcmapp.NewControllerManagerCommand()
	cmd.SetArgs(args)
	if err := cli.RunNoErrOutput(cmd); err != nil {
		fmt.Fprintf(os.Stderr, "kube-controller-manager: %v\n", err)
		return 1
	}
	return 0
}
