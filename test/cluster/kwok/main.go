// Command kg-kwok runs kwok (sigs.k8s.io/kwok) for kg-testcluster: fake nodes whose
// Pods become Running, plus the kubelet's exec, attach, logs and port-forward
// endpoints backed by local commands, local files and local ports.
//
// It is kwok's own command, unchanged, with a thin front in this process:
//   - the kubelet port the apiserver dials (TLS, a cert from the test CA) is
//     served here; /exec/ is answered here (exec.go says why), everything
//     else is proxied to kwok's server on a private loopback port;
//   - kwok's default stages (node ready + lease, pod ready/complete/delete) are
//     written to a config file, since kwok refuses to start without stages;
//   - the CRDs of the kinds named in --crds are installed before kwok watches them.
//
// It lives in its own Go module because kwok needs newer golang.org/x, grpc
// and otel than k8s.io/kubernetes v1.36.3 pins; see test/cluster/README.md.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"sigs.k8s.io/kwok/pkg/config"
	"sigs.k8s.io/kwok/pkg/kwok/cmd"
	"sigs.k8s.io/kwok/pkg/log"
	"sigs.k8s.io/kwok/pkg/utils/signals"
)

const usage = `usage: kg-kwok --listen ADDR --tls-cert-file F --tls-private-key-file F --kubeconfig F
               --state-dir DIR [--crds KIND,...] [--die-with-parent] -- KWOK-FLAGS...

Flags before "--" are kg-kwok's own; the rest go to kwok unchanged (kg-kwok adds
--kubeconfig, --server-address, --enable-crds and a --config with the default stages).
`

type options struct {
	listen, certFile, keyFile, kubeconfig, stateDir string
	crds                                            []string
	dieWithParent                                   bool
}

func main() {
	opts, kwokArgs, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "kg-kwok: %v\n\n%s", err, usage)
		os.Exit(2)
	}
	if err := run(opts, kwokArgs); err != nil {
		fmt.Fprintf(os.Stderr, "kg-kwok: %v\n", err)
		os.Exit(1)
	}
}

func parseArgs(argv []string) (*options, []string, error) {
	sep := -1
	for i, a := range argv {
		if a == "--" {
			sep = i
			break
		}
	}
	var kwokArgs []string
	if sep >= 0 {
		argv, kwokArgs = argv[:sep], argv[sep+1:]
	}
	o := &options{}
	fs := flag.NewFlagSet("kg-kwok", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.StringVar(&o.listen, "listen", "", "address of the kubelet endpoint the apiserver dials (TLS)")
	fs.StringVar(&o.certFile, "tls-cert-file", "", "serving certificate for --listen")
	fs.StringVar(&o.keyFile, "tls-private-key-file", "", "key of --tls-cert-file")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "admin kubeconfig")
	fs.StringVar(&o.stateDir, "state-dir", "", "directory for the stages config")
	crds := fs.String("crds", "", "comma-separated kwok kinds to serve from custom resources (CRDs are installed)")
	fs.BoolVar(&o.dieWithParent, "die-with-parent", false, "exit when the parent process exits")
	if err := fs.Parse(argv); err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("unexpected argument %q (kwok's flags go after --)", fs.Arg(0))
	}
	if o.listen == "" || o.certFile == "" || o.keyFile == "" || o.kubeconfig == "" || o.stateDir == "" {
		return nil, nil, fmt.Errorf("--listen, --tls-cert-file, --tls-private-key-file, --kubeconfig and --state-dir are required")
	}
	if *crds != "" {
		o.crds = strings.Split(*crds, ",")
	}
	return o, kwokArgs, nil
}

func run(o *options, kwokArgs []string) error {
	if o.dieWithParent {
		watchParent()
	}
	stagesFile := filepath.Join(o.stateDir, "kwok-stages.yaml")
	if err := writeStages(stagesFile); err != nil {
		return err
	}
	internal, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	kwokArgs = append(kwokArgs,
		"--kubeconfig="+o.kubeconfig,
		"--server-address="+internal,
		"--config="+stagesFile,
	)
	if len(o.crds) > 0 {
		kwokArgs = append(kwokArgs, "--enable-crds="+strings.Join(o.crds, ","))
	}

	// kwok reads os.Args itself (config.InitFlags, log.InitFlags, cobra).
	os.Args = append([]string{os.Args[0]}, kwokArgs...)
	ctx := signals.SetupSignalContext()

	if err := installCRDs(ctx, o.kubeconfig, o.crds); err != nil {
		return err
	}

	// What follows is kwok's cmd/kwok/main.go.
	flagset := pflag.NewFlagSet("global", pflag.ContinueOnError)
	flagset.ParseErrorsAllowlist.UnknownFlags = true
	flagset.Usage = func() {}
	ctx, _ = log.InitFlags(ctx, flagset)
	ctx, err = config.InitFlags(ctx, flagset)
	if err != nil {
		return fmt.Errorf("kwok config: %w", err)
	}

	front, err := newFront(ctx, o.listen, o.certFile, o.keyFile, internal)
	if err != nil {
		return err
	}
	frontErr := make(chan error, 1)
	go func() { frontErr <- front.serve(ctx) }()

	command := cmd.NewCommand(ctx)
	command.PersistentFlags().AddFlagSet(flagset)
	kwokErr := make(chan error, 1)
	go func() { kwokErr <- command.ExecuteContext(ctx) }()

	select {
	case err := <-kwokErr:
		if err != nil {
			return fmt.Errorf("kwok: %w", err)
		}
		return nil
	case err := <-frontErr:
		return fmt.Errorf("kubelet front: %w", err)
	}
}

// freeLoopbackAddr returns 127.0.0.1:PORT with a port that was free a moment ago.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(l.Addr().(*net.TCPAddr).Port)), nil
}

// watchParent exits the process once its parent has gone away (re-parenting),
// next to the Pdeathsig that kg-testcluster sets.
func watchParent() {
	ppid := os.Getppid()
	go func() {
		for range time.Tick(500 * time.Millisecond) {
			if os.Getppid() != ppid {
				os.Exit(0)
			}
		}
	}()
}
