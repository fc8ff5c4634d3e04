package load_test

import (
	"bufio"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/wire"
)

// proxy is an in-process TCP proxy in front of a broker. Packets from the broker
// to clients pass through mutate, which gets the running PUBLISH count (from 1)
// and returns the frames to forward instead (none to drop, two to duplicate).
type proxy struct {
	addr   string
	ln     net.Listener
	mutate func(n int, frame []byte) [][]byte
	mu     sync.Mutex
	n      int
	conns  []net.Conn
	remote map[string]int // client source IPs seen
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, upstream string, mutate func(n int, frame []byte) [][]byte) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), ln: ln, mutate: mutate}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			if p.remote == nil {
				p.remote = map[string]int{}
			}
			p.remote[c.RemoteAddr().(*net.TCPAddr).IP.String()]++
			p.mu.Unlock()
			p.wg.Add(2)
			go func() {
				defer p.wg.Done()
				_, _ = io.Copy(u, c)
				u.Close()
			}()
			go func() {
				defer p.wg.Done()
				defer c.Close()
				p.down(u, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) sources() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.remote {
		out[k] = v
	}
	return out
}

func (p *proxy) down(from, to net.Conn) {
	r := bufio.NewReader(from)
	w := bufio.NewWriter(to)
	for {
		f, err := wire.ReadFrame(r)
		if err != nil {
			return
		}
		out := [][]byte{f}
		if wire.IsPublish(f) {
			p.mu.Lock()
			p.n++
			n := p.n
			p.mu.Unlock()
			out = p.mutate(n, f)
		}
		for _, o := range out {
			if _, err := w.Write(o); err != nil {
				return
			}
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}
