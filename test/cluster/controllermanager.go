package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

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

// controllerManager is the running child process.
type controllerManager struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the child has exited
	err  error         // exit status, valid after done
}

// startControllerManager starts `<this binary> controller-manager args...`
// with output to out. The child gets SIGKILL if this process dies.
func startControllerManager(args []string, out io.Writer) (*controllerManager, error) {
	// /proc/self/exe is this very binary even if build.sh has replaced the
	// file on disk since we started.
	cmd := exec.Command("/proc/self/exe", append([]string{"controller-manager"}, args...)...)
	cmd.Args[0] = os.Args[0] // what ps shows
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cm := &controllerManager{cmd: cmd, done: make(chan struct{})}

	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the *thread* that forked the child exits, and
		// the Go runtime may retire threads. Keep this goroutine on its own
		// thread for the child's whole life.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cm.err = cmd.Wait()
		close(cm.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start kube-controller-manager: %w", err)
	}
	return cm, nil
}

// stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (cm *controllerManager) stop(grace time.Duration) {
	select {
	case <-cm.done:
		return
	default:
	}
	_ = cm.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-cm.done:
	case <-time.After(grace):
		_ = cm.cmd.Process.Kill()
		<-cm.done
	}
}
