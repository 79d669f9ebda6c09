package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"sigs.k8s.io/kwok/pkg/apis/internalversion"
	"sigs.k8s.io/kwok/pkg/config"
)

// front is the kubelet endpoint the apiserver dials: /exec/ is answered here
// (exec.go), everything else is proxied to kwok's own server.
type front struct {
	srv               *http.Server
	ln                net.Listener
	certFile, keyFile string
}

func newFront(ctx context.Context, listen, certFile, keyFile, kwokAddr string) (*front, error) {
	// The same ClusterExec/Exec objects from the --config files that kwok reads.
	executor := &localExecutor{
		clusterExecs: config.FilterWithTypeFromContext[*internalversion.ClusterExec](ctx),
		execs:        config.FilterWithTypeFromContext[*internalversion.Exec](ctx),
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: kwokAddr})
		},
		FlushInterval: -1, // logs -f: every write goes out at once
	}
	mux := http.NewServeMux()
	mux.Handle("/", proxy)
	mux.Handle("/exec/", &execHandler{executor: executor})

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	f := &front{ln: ln, certFile: certFile, keyFile: keyFile, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}}
	go func() {
		<-ctx.Done()
		_ = f.srv.Close()
	}()
	return f, nil
}

func (f *front) serve(ctx context.Context) error {
	err := f.srv.ServeTLS(f.ln, f.certFile, f.keyFile)
	if errors.Is(err, http.ErrServerClosed) || ctx.Err() != nil {
		return nil
	}
	return err
}
