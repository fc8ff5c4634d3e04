package broker

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	conn := &wsConn{Conn: c}
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

// wsConn adapts a WebSocket to net.Conn: MQTT bytes travel in binary
// messages, and a packet may span messages [MQTT-6.0.0-2].
type wsConn struct {
	*websocket.Conn
	r       io.Reader
	writeMu sync.Mutex
	slack   atomic.Int64 // see slackConn
}

func (c *wsConn) setDeadlineSlack(d time.Duration) { c.slack.Store(int64(d)) }

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			mt, r, err := c.NextReader()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					return 0, io.EOF
				}
				return 0, err
			}
			if mt != websocket.BinaryMessage {
				// [MQTT-6.0.0-1] a non-binary frame is a protocol error.
				return 0, errors.New("broker: websocket frame is not binary")
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// SetDeadline sets the read deadline, and the write deadline under the write
// lock: gorilla's Conn does not allow SetWriteDeadline concurrently with a
// write, and mochi refreshes deadlines from its read loop while its write
// loop writes.
func (c *wsConn) SetDeadline(t time.Time) error {
	if !t.IsZero() {
		t = t.Add(time.Duration(c.slack.Load()))
	}
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *wsConn) SetWriteDeadline(t time.Time) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

var _ net.Conn = (*wsConn)(nil)
