package main

import (
	"fmt"
	"os"

	"k8s.io/component-base/cli"
	schedulerapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

// schedulerArgs are the kube-scheduler flags for a cluster.
func schedulerArgs(kubeconfig string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--secure-port=0", // no HTTPS endpoint: nothing scrapes it and it would need a port
		"-v=0",
	}
}

// runScheduler is the `scheduler` subcommand: the child process that `up`
// starts when the cluster has nodes. It runs kube-scheduler with args.
func runScheduler(args []string) int {
	watchParent(func() { os.Exit(0) })
	cmd := schedulerapp.NewSchedulerCommand()
	cmd.SetArgs(args)
	if err := cli.RunNoErrOutput(cmd); err != nil {
		fmt.Fprintf(os.Stderr, "kube-scheduler: %v\n", err)
		return 1
	}
	return 0
}
