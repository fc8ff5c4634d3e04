package client_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
)

// captureDialer is a real dialer that remembers its connections, so a test can
// cut them as a network failure would.
type captureDialer struct {
	mu    sync.Mutex
	conns []net.Conn
	gate  chan struct{} // when non-nil, dials wait for it to close
	dials int
}

func (d *captureDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	gate := d.gate
	d.dials++
	d.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.conns = append(d.conns, c)
	d.mu.Unlock()
	return c, nil
}

// cut closes every connection dialled so far.
func (d *captureDialer) cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		_ = c.Close()
	}
	d.conns = nil
}

// proxy is a TCP proxy on 127.0.0.1 in front of a broker. blackhole makes the
// current connections swallow all traffic without closing (a dead network
// path); new connections are forwarded normally.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	links  []*link
	wg     sync.WaitGroup
}

type link struct {
	client, server net.Conn
	mu             sync.Mutex
	holed          bool
}

func (l *link) isHoled() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holed
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		l := &link{client: c, server: s}
		p.mu.Lock()
		p.links = append(p.links, l)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(l, c, s)
		go p.pipe(l, s, c)
	}
}

func (p *proxy) pipe(l *link, from, to net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 && !l.isHoled() {
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				_ = to.Close()
			}
			_ = to.Close()
			return
		}
	}
}

// blackhole stops forwarding on every current connection.
func (p *proxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		l.mu.Lock()
		l.holed = true
		l.mu.Unlock()
	}
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, l := range p.links {
		_ = l.client.Close()
		_ = l.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
