package wire

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/courier-mqtt/courier/internal/wsconn"

	"github.com/gorilla/websocket"
)

// Dialer opens transport connections to one broker: tcp://host:port,
// tls://host:port (also ssl://, mqtts://), ws://host:port/path or wss://...
// It is safe for concurrent use.
type Dialer struct {
	scheme string
	host   string
	url    string // for ws/wss
	tls    *tls.Config
	src    []net.IP
	next   atomic.Uint64
	// Timeout bounds one dial (and the TLS or WebSocket handshake). Default 10 s.
	Timeout time.Duration
}

// NewDialer parses the broker address. A bare host:port means tcp. tlsConfig is
// used for tls and wss (nil means the system defaults). sourceIPs, when given,
// are used in turn as local addresses, to spread connections over several
// source addresses (and so several ephemeral port ranges).
func NewDialer(broker string, tlsConfig *tls.Config, sourceIPs []net.IP) (*Dialer, error) {
	if !strings.Contains(broker, "://") {
		broker = "tcp://" + broker
	}
	u, err := url.Parse(broker)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadBrokerURL, err)
	}
	d := &Dialer{scheme: u.Scheme, host: u.Host, tls: tlsConfig, src: sourceIPs, Timeout: 10 * time.Second}
	switch u.Scheme {
	case "tcp", "mqtt":
		d.scheme = "tcp"
	case "tls", "ssl", "mqtts":
		d.scheme = "tls"
	case "ws", "wss":
		if u.Path == "" {
			u.Path = "/mqtt"
		}
		d.url = u.String()
	default:
		return nil, fmt.Errorf("%w: unknown scheme %q", ErrBadBrokerURL, u.Scheme)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadBrokerURL, err)
	}
	if d.tls == nil {
		d.tls = &tls.Config{}
	}
	return d, nil
}

// Host returns the broker's host:port.
func (d *Dialer) Host() string { return d.host }

func (d *Dialer) netDialer() *net.Dialer {
	nd := &net.Dialer{Timeout: d.Timeout}
	if len(d.src) > 0 {
		ip := d.src[d.next.Add(1)%uint64(len(d.src))]
		nd.LocalAddr = &net.TCPAddr{IP: ip}
	}
	return nd
}

// Dial opens one connection, ready for Connect.
func (d *Dialer) Dial(ctx context.Context) (net.Conn, error) {
	nd := d.netDialer()
	switch d.scheme {
	case "tcp":
		return nd.DialContext(ctx, "tcp", d.host)
	case "tls":
		td := &tls.Dialer{NetDialer: nd, Config: d.tlsFor()}
		return td.DialContext(ctx, "tcp", d.host)
	default:
		wd := websocket.Dialer{
			NetDialContext:   nd.DialContext,
			TLSClientConfig:  d.tlsFor(),
			Subprotocols:     []string{"mqtt"},
			HandshakeTimeout: d.Timeout,
		}
		ws, resp, err := wd.DialContext(ctx, d.url, nil)
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if err != nil {
			return nil, err
		}
		return wsconn.New(ws), nil
	}
}

func (d *Dialer) tlsFor() *tls.Config {
	c := d.tls.Clone()
	if c.ServerName == "" {
		c.ServerName, _, _ = net.SplitHostPort(d.host)
	}
	return c
}
