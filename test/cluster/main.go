// Command kg-testcluster runs a real Kubernetes control plane (embedded etcd,
// kube-apiserver in-process, kube-controller-manager and kube-scheduler as
// child processes) for kubegate's tests, optionally with fake kwok nodes
// (kg-kwok, a separate binary). Kubernetes is linked into this one binary;
// see README.md.
package main

import (
	"fmt"
	"os"
	"time"

	"k8s.io/component-base/version"
)

const usage = `kg-testcluster: a real Kubernetes control plane for tests.

Usage:
  kg-testcluster up --dir DIR [--nodes N] [--die-with-parent] [--verbose]
      Start etcd, kube-apiserver and kube-controller-manager with all state in
      DIR; with --nodes N > 0 also kube-scheduler, kg-kwok and N fake nodes.
      Print one line "READY {json}" on stdout once the cluster is usable;
      stop cleanly on SIGTERM/SIGINT.
  kg-testcluster version
      Print the Kubernetes version this binary was built from.
  kg-testcluster controller-manager FLAGS...
  kg-testcluster scheduler FLAGS...
      (internal) run kube-controller-manager / kube-scheduler; started by "up".
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "up":
		os.Exit(runUp(os.Args[2:]))
	case "controller-manager":
		os.Exit(runControllerManager(os.Args[2:]))
	case "scheduler":
		os.Exit(runScheduler(os.Args[2:]))
	case "version":
		fmt.Println(version.Get().GitVersion)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}

// watchParent calls onExit once when this process's parent has gone away
// (the process is re-parented). Polls every 500ms.
func watchParent(onExit func()) {
	ppid := os.Getppid()
	go func() {
		for range time.Tick(500 * time.Millisecond) {
			if os.Getppid() != ppid {
				onExit()
				return
			}
		}
	}()
}
