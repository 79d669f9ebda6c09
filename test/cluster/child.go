package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// child is a component running as a child process: kube-controller-manager
// and kube-scheduler (this binary again, with another subcommand) and kg-kwok.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the child has exited
	err  error         // exit status, valid after done
}

// startChild starts path with args and output to out; name is for
// messages, argv0 what ps shows, env nil means ours. The child gets SIGKILL
// if this process dies.
func startChild(name, argv0, path string, args []string, env []string, out io.Writer) (*child, error) {
	cmd := exec.Command(path, args...)
	cmd.Args[0] = argv0
	cmd.Env = env
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}

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
		c.err = cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return c, nil
}

// startSelf starts this very binary with a subcommand. /proc/self/exe is
// this binary even if build.sh has replaced the file on disk since we started.
func startSelf(name, subcommand string, args []string, out io.Writer) (*child, error) {
	return startChild(name, os.Args[0], "/proc/self/exe", append([]string{subcommand}, args...), nil, out)
}

// stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (c *child) stop(grace time.Duration) {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// startChild starts a child process with output to DIR/logName (or our
// stderr with --verbose) and reports its exit through stop.
func (c *cluster) startChild(stop context.CancelCauseFunc, logName string, start func(io.Writer) (*child, error)) (*child, error) {
	var out io.Writer = os.Stderr
	if !c.verbose {
		f, err := os.OpenFile(filepath.Join(c.dir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close() // the child has its own copy of the descriptor
		out = f
	}
	ch, err := start(out)
	if err != nil {
		return nil, err
	}
	c.children = append(c.children, ch)
	go func() {
		<-ch.done
		stop(fmt.Errorf("%s exited: %v", ch.name, ch.err))
	}()
	return ch, nil
}
