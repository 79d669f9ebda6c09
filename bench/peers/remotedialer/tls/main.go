// rd-tls: remotedialer's reverse tunnel as its example server and client use it, with what the
// examples lack for a fair comparison with kubegate: TLS on the front (HTTP/2 and HTTP/1.1) and
// on the tunnel (wss: the client checks the server's certificate, the server checks a shared
// token), any method and header forwarded, and a pool of upstream connections sized to the
// callers (the examples keep Go's default of two idle connections). Callers are still not
// authenticated and nothing is audited.
//
//	rd-tls server -listen ADDR -cert FILE -key FILE -id ID -upstream https://HOST:PORT
//	rd-tls client -connect wss://ADDR/connect -id ID -allow HOST:PORT
//
// Both read the tunnel token from RD_TOKEN; Go's TLS client trusts SSL_CERT_FILE.
package main

import (
	"context"
	"crypto/subtle"
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"

	"github.com/rancher/remotedialer"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: rd-tls server|client [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:8443", "front and tunnel address (server)")
	cert := fs.String("cert", "", "front certificate (server)")
	key := fs.String("key", "", "front key (server)")
	upstream := fs.String("upstream", "", "upstream URL reached through the tunnel (server)")
	connect := fs.String("connect", "", "tunnel URL (client)")
	id := fs.String("id", "bench", "tunnel ID: the client's, the one the server forwards to")
	allow := fs.String("allow", "", "the one address the client dials (client)")
	_ = fs.Parse(os.Args[2:])
	token := os.Getenv("RD_TOKEN")
	if token == "" {
		log.Fatal("RD_TOKEN is empty")
	}
	switch os.Args[1] {
	case "server":
		up, err := url.Parse(*upstream)
		if err != nil {
			log.Fatal(err)
		}
		log.Fatal(server(*listen, *cert, *key, *id, up, token))
	case "client":
		headers := http.Header{"X-Tunnel-Id": {*id}, "X-Tunnel-Token": {token}}
		only := func(proto, address string) bool { return proto == "tcp" && address == *allow }
		log.Fatal(remotedialer.ClientConnect(context.Background(), *connect, headers, nil, only, nil))
	default:
		log.Fatalf("unknown mode %q", os.Args[1])
	}
}

// server: /connect takes tunnels; /client/ID/PATH is PATH on the upstream through tunnel ID.
func server(listen, cert, key, id string, up *url.URL, token string) error {
	tunnels := remotedialer.New(func(req *http.Request) (string, bool, error) {
		ok := subtle.ConstantTimeCompare([]byte(req.Header.Get("X-Tunnel-Token")), []byte(token)) == 1
		id := req.Header.Get("X-Tunnel-Id")
		return id, ok && id != "", nil
	}, remotedialer.DefaultErrorWriter)
	prefix := "/client/" + id
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(up)
			r.Out.URL.Path = strings.TrimPrefix(r.In.URL.Path, prefix)
			r.Out.URL.RawPath = ""
		},
		Transport: &http.Transport{DialContext: tunnels.Dialer(id), MaxIdleConnsPerHost: 1024},
	}
	mux := http.NewServeMux()
	mux.Handle("/connect", tunnels)
	mux.Handle(prefix+"/", proxy)
	return http.ListenAndServeTLS(listen, cert, key, mux)
}
