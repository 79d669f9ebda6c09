package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/creack/pty"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"sigs.k8s.io/kwok/pkg/apis/internalversion"
)

// Exec is served here rather than by kwok (v0.8.0), whose local exec
//   - never closes the command's stdin pipe, so `kubectl exec -i … -- cat`
//     hangs after the client's stdin has ended, and
//   - wraps *os/exec.ExitError with fmt.Errorf, while k8s.io/cri-streaming
//     reports an exit code only for a k8s.io/utils/exec.ExitError: every
//     non-zero exit became "Internal error occurred: … exit status N" and
//     kubectl exited 1.
// The configuration is kwok's: the ClusterExec/Exec objects of --config,
// matched to the pod and container as kwok does.

// outputGrace bounds the wait for output after the command has exited (a
// background child may keep stdout or the terminal open).
const outputGrace = 2 * time.Second

// execHandler serves the kubelet's /exec/{namespace}/{pod}[/{uid}]/{container}?command=…
type execHandler struct {
	executor remotecommand.Executor
}

func (h *execHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	parts := strings.Split(strings.TrimPrefix(req.URL.Path, "/exec/"), "/")
	var namespace, pod, uid, container string
	switch len(parts) {
	case 3:
		namespace, pod, container = parts[0], parts[1], parts[2]
	case 4:
		namespace, pod, uid, container = parts[0], parts[1], parts[2], parts[3]
	default:
		http.Error(w, "expected /exec/{namespace}/{pod}[/{uid}]/{container}", http.StatusNotFound)
		return
	}
	if req.Method != http.MethodGet && req.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	cmd := req.URL.Query()["command"]
	if namespace == "" || pod == "" || container == "" || len(cmd) == 0 {
		http.Error(w, "missing namespace, pod, container or command", http.StatusBadRequest)
		return
	}
	opts, err := remotecommand.NewOptions(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// kwok's naming: "pod/namespace".
	remotecommand.ServeExec(w, req, h.executor, pod+"/"+namespace, uid, container, cmd, opts,
		time.Hour, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// localExecutor runs exec requests as local processes.
type localExecutor struct {
	clusterExecs []*internalversion.ClusterExec
	execs        []*internalversion.Exec
}

// target finds the exec configuration of a container as kwok does: an Exec
// named like the pod wins; else the first ClusterExec whose selector matches;
// within one, the entry that names the container, else the first without names.
func (e *localExecutor) target(pod, namespace, container string) (*internalversion.ExecTarget, error) {
	for _, x := range e.execs {
		if x.Name == pod && x.Namespace == namespace {
			if t := containerTarget(x.Spec.Execs, container); t != nil {
				return t, nil
			}
			return nil, fmt.Errorf("exec target not found for container %q in pod %s/%s", container, namespace, pod)
		}
	}
	for _, x := range e.clusterExecs {
		if x.Spec.Selector.Match(pod, namespace) {
			if t := containerTarget(x.Spec.Execs, container); t != nil {
				return t, nil
			}
		}
	}
	return nil, fmt.Errorf("no exec found for container %q in pod %s/%s", container, namespace, pod)
}

func containerTarget(targets []internalversion.ExecTarget, container string) *internalversion.ExecTarget {
	var fallback *internalversion.ExecTarget
	for i := range targets {
		if slices.Contains(targets[i].Containers, container) {
			return &targets[i]
		}
		if len(targets[i].Containers) == 0 && fallback == nil {
			fallback = &targets[i]
		}
	}
	return fallback
}

// ExecInContainer implements remotecommand.Executor. name is kwok's "pod/namespace".
func (e *localExecutor) ExecInContainer(ctx context.Context, name, _, container string, cmd []string,
	in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration,
) error {
	pod, namespace, _ := strings.Cut(name, "/")
	t, err := e.target(pod, namespace, container)
	if err != nil {
		return err
	}
	if t.Local == nil {
		return fmt.Errorf("exec for container %q in pod %s/%s: only local exec is supported", container, namespace, pod)
	}
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	c.Dir = t.Local.WorkDir
	c.Env = os.Environ()
	for _, env := range t.Local.Envs {
		c.Env = append(c.Env, env.Name+"="+env.Value)
	}
	c.SysProcAttr = &syscall.SysProcAttr{}
	if sc := t.Local.SecurityContext; sc != nil && (sc.RunAsUser != nil || sc.RunAsGroup != nil) {
		cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}
		if sc.RunAsUser != nil {
			cred.Uid = uint32(*sc.RunAsUser)
		}
		if sc.RunAsGroup != nil {
			cred.Gid = uint32(*sc.RunAsGroup)
		}
		c.SysProcAttr.Credential = cred
	}

	if tty {
		err = runWithTerminal(c, in, out, resize)
	} else {
		err = runWithPipes(c, in, out, errOut)
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.Exited() {
		return utilexec.CodeExitError{Err: err, Code: exitErr.ExitCode()}
	}
	return err
}

// runWithPipes runs c with the streams as stdin, stdout and stderr (each may
// be nil). The command sees EOF on stdin when the client closes it.
func runWithPipes(c *exec.Cmd, in io.Reader, out, errOut io.Writer) error {
	if in != nil {
		stdin, err := c.StdinPipe()
		if err != nil {
			return err
		}
		go func() {
			_, _ = io.Copy(stdin, in)
			_ = stdin.Close()
		}()
	}
	if out != nil {
		c.Stdout = out
	}
	if errOut != nil {
		c.Stderr = errOut
	}
	c.WaitDelay = outputGrace
	err := c.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		return nil // exited 0; a background child held on to stdout
	}
	return err
}

// runWithTerminal runs c as a session leader on a new pseudo-terminal that
// carries stdin and output (a TTY merges stdout and stderr), resized on request.
func runWithTerminal(c *exec.Cmd, in io.Reader, out io.Writer, resize <-chan remotecommand.TerminalSize) error {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return err
	}
	defer ptmx.Close()
	c.Stdin, c.Stdout, c.Stderr = tty, tty, tty
	c.SysProcAttr.Setsid = true
	c.SysProcAttr.Setctty = true // Ctty 0: the child's stdin, the terminal
	err = c.Start()
	_ = tty.Close() // the child has its own; reading ptmx ends once it is gone
	if err != nil {
		return err
	}
	if resize != nil {
		go func() {
			for size := range resize {
				_ = pty.Setsize(ptmx, &pty.Winsize{Rows: size.Height, Cols: size.Width})
			}
		}()
	}
	if in != nil {
		go func() { _, _ = io.Copy(ptmx, in) }()
	}
	copied := make(chan struct{})
	go func() {
		if out != nil {
			_, _ = io.Copy(out, ptmx)
		} else {
			_, _ = io.Copy(io.Discard, ptmx)
		}
		close(copied)
	}()
	err = c.Wait()
	select {
	case <-copied:
	case <-time.After(outputGrace):
	}
	return err
}
