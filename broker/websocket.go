package broker

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/courier-mqtt/courier/internal/wsconn"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// wsSubprotocols are the WebSocket subprotocols accepted, preferred first.
// [MQTT-6.0.0-3] requires "mqtt"; "mqttv3.1" is what MQTT 3.1 clients send.
var wsSubprotocols = []string{"mqtt", "mqttv3.1"}

// wsServer serves MQTT over WebSocket on a listener's net.Listener.
type wsServer struct {
	l        *listener
	srv      *http.Server
	upgrader websocket.Upgrader
	est      listeners.EstablishFn
	ready    chan struct{}
}

func newWSServer(l *listener) *wsServer {
	w := &wsServer{l: l, ready: make(chan struct{})}
	path := l.cfg.Path
	if path == "" {
		path = "/mqtt"
	}
	mux := http.NewServeMux()
	mux.HandleFunc(path, w.handle)
	w.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	w.upgrader = websocket.Upgrader{
		Subprotocols: wsSubprotocols,
		CheckOrigin:  w.checkOrigin,
	}
	return w
}

// checkOrigin replaces mochi's accept-all: requests without an Origin header
// come from non-browser clients and are accepted; browser requests only from
// an allowed origin.
func (w *wsServer) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, allowed := range w.l.cfg.AllowedOrigins {
		if allowed == "*" || strings.EqualFold(allowed, origin) {
			return true
		}
	}
	return false
}

func (w *wsServer) serve(establish listeners.EstablishFn) {
	w.est = establish
	close(w.ready)
	_ = w.srv.Serve(w.l.ln)
}

func (w *wsServer) handle(rw http.ResponseWriter, r *http.Request) {
	if !offersMQTT(r) {
		http.Error(rw, "Sec-WebSocket-Protocol must offer mqtt", http.StatusBadRequest)
		return
	}
	c, err := w.upgrader.Upgrade(rw, r, nil)
	if err != nil {
		return // the upgrader has answered with the HTTP error
	}
	<-w.ready
	// deadlineConn adds the keepalive slack (see slackConn) on top, the
	// validating layer (validConn) the inbound protocol checks.
	conn := w.l.b.validating(w.l.b.deadlines(wsconn.New(c)))
	if !w.l.track(conn) {
		_ = conn.Close()
		return
	}
	// The handler goroutine belongs to net/http; tracked, Shutdown waits for
	// it like any other connection.
	w.l.serveConn(conn, w.est)
}

func offersMQTT(r *http.Request) bool {
	for _, p := range websocket.Subprotocols(r) {
		for _, ok := range wsSubprotocols {
			if p == ok {
				return true
			}
		}
	}
	return false
}

func (w *wsServer) close(ctx context.Context) {
	// Shutdown stops accepting; hijacked (upgraded) connections are ours to
	// close, which the broker does after disconnecting clients.
	_ = w.srv.Shutdown(ctx)
}
