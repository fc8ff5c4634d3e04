package broker

import (
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// opsServer serves /healthz, /readyz, /metrics and optionally /debug/pprof.
type opsServer struct {
	ln  net.Listener
	srv *http.Server
	b   *Broker
}

func (b *Broker) newOpsServer(ln net.Listener) *opsServer {
	mux := http.NewServeMux()
	o := &opsServer{ln: ln, b: b, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !b.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("/metrics", b.MetricsHandler())
	if b.cfg.Ops.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return o
}

// MetricsHandler serves the broker's metrics in the Prometheus text format.
func (b *Broker) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(b.metrics.reg, promhttp.HandlerOpts{})
}
