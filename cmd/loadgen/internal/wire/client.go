package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Handler receives a Client's inbound events. Callbacks run on the Client's
// reader goroutine, one at a time; they must not block for long and must not
// call Close (use CloseAsync if needed). Nil callbacks are skipped.
type Handler struct {
	// OnPublish is called for every received PUBLISH, before it is acknowledged.
	OnPublish func(m *Message)
	// OnAck is called when an outbound QoS 1 or 2 publish completes (PUBACK or
	// PUBCOMP, or a PUBREC failure), with the stamp given to Publish and the reason
	// code (0 for success).
	OnAck func(id uint16, stamp int64, reason byte)
	// OnClose is called once when the connection ends, with why it ended
	// (nil after Close).
	OnClose func(err error)
}

// Client is one MQTT connection. Publish and Subscribe may be called from one
// goroutine at a time per method family; Close is safe from any goroutine.
type Client struct {
	conn    net.Conn
	version byte
	h       Handler
	connack Connack

	br *bufio.Reader

	wmu  sync.Mutex
	bw   *bufio.Writer
	wbuf []byte

	ids      chan uint16
	stamps   []atomic.Int64
	inflight []atomic.Bool
	subMu    sync.Mutex
	subWait  map[uint16]chan error

	pmu     sync.Mutex
	ping    *time.Timer
	closing bool

	done     chan struct{}
	err      error
	graceful atomic.Bool
}

// Connect performs the MQTT handshake on conn and, on success, starts the
// Client's reader goroutine. A refused CONNACK returns a *ConnackError and
// closes conn. The context bounds the handshake only.
func Connect(ctx context.Context, conn net.Conn, o ConnectOptions, h Handler) (*Client, error) {
	if o.Version == 0 {
		o.Version = V5
	}
	if o.Inflight <= 0 {
		o.Inflight = 256
	}
	if o.BufferSize <= 0 {
		o.BufferSize = 4096
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	c := &Client{
		conn:    conn,
		version: o.Version,
		h:       h,
		br:      bufio.NewReaderSize(conn, o.BufferSize),
		bw:      bufio.NewWriterSize(conn, o.BufferSize),
		subWait: map[uint16]chan error{},
		done:    make(chan struct{}),
	}
	ack, err := c.handshake(&o)
	stop()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	c.connack = ack
	window := o.Inflight
	if ack.ReceiveMaximum > 0 && int(ack.ReceiveMaximum) < window {
		window = int(ack.ReceiveMaximum)
	}
	window = min(window, 65535)
	c.ids = make(chan uint16, window)
	for i := 1; i <= window; i++ {
		c.ids <- uint16(i)
	}
	c.stamps = make([]atomic.Int64, window+1)
	c.inflight = make([]atomic.Bool, window+1)
	if o.Keepalive > 0 {
		// Ping at 3/4 of the keepalive: brokers that round 1.5x the keepalive
		// down to whole seconds (mochi) would otherwise race a ping sent at 1x.
		k := time.Duration(o.Keepalive) * time.Second * 3 / 4
		c.pmu.Lock()
		c.ping = time.AfterFunc(k, func() { c.pingNow(k) })
		c.pmu.Unlock()
	}
	go c.readLoop()
	return c, nil
}

func (c *Client) handshake(o *ConnectOptions) (Connack, error) {
	if _, err := c.conn.Write(appendConnect(nil, o)); err != nil {
		return Connack{}, fmt.Errorf("write connect: %w", err)
	}
	h, body, _, err := readPacket(c.br, nil)
	if err != nil {
		return Connack{}, fmt.Errorf("read connack: %w", err)
	}
	if h>>4 != typeConnack {
		return Connack{}, fmt.Errorf("%w: expected connack, got type %d", ErrProtocol, h>>4)
	}
	ack, err := decodeConnack(body, o.Version)
	if err != nil {
		return ack, err
	}
	if ack.Code != 0 {
		return ack, &ConnackError{Version: o.Version, Code: ack.Code}
	}
	return ack, nil
}

// Connack returns the server's CONNACK.
func (c *Client) Connack() Connack { return c.connack }

// Window is the number of QoS 1/2 messages that may be in flight at once.
func (c *Client) Window() int { return cap(c.ids) }

// Done is closed when the connection has ended and the reader has stopped.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended (nil after Close); valid after Done.
func (c *Client) Err() error {
	<-c.done
	return c.err
}

func (c *Client) pingNow(k time.Duration) {
	c.pmu.Lock()
	closing := c.closing
	c.pmu.Unlock()
	if closing {
		return
	}
	c.wmu.Lock()
	c.bw.Write([]byte{typePingreq << 4, 0})
	err := c.bw.Flush()
	c.wmu.Unlock()
	if err != nil {
		_ = c.conn.Close()
		return
	}
	c.pmu.Lock()
	if !c.closing {
		c.ping.Reset(k)
	}
	c.pmu.Unlock()
}

func (c *Client) acquire(ctx context.Context) (uint16, error) {
	select {
	case id := <-c.ids:
		return id, nil
	default:
	}
	// The window is full: push out what is buffered so acks can come back.
	if err := c.Flush(); err != nil {
		return 0, err
	}
	select {
	case id := <-c.ids:
		return id, nil
	case <-c.done:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (c *Client) release(id uint16) {
	select {
	case c.ids <- id:
	default:
	}
}

// Publish buffers a PUBLISH and, if flush is set, writes it out. For QoS 1 and
// 2 it first takes a packet id, waiting while the in-flight window is full;
// stamp comes back in Handler.OnAck. It returns the packet id (0 for QoS 0).
func (c *Client) Publish(ctx context.Context, topic string, qos byte, payload []byte, stamp int64, flush bool) (uint16, error) {
	var id uint16
	if qos > 0 {
		var err error
		if id, err = c.Reserve(ctx); err != nil {
			return 0, err
		}
	}
	return id, c.PublishReserved(id, topic, qos, payload, stamp, flush)
}

// Reserve takes a packet id for one QoS 1 or 2 PUBLISH, waiting while the
// in-flight window is full. Pass it to PublishReserved, which must follow.
// Splitting the two lets a caller take its timestamps after the wait.
func (c *Client) Reserve(ctx context.Context) (uint16, error) { return c.acquire(ctx) }

// PublishReserved buffers a PUBLISH with a packet id from Reserve (0 for QoS 0)
// and, if flush is set, writes it out.
func (c *Client) PublishReserved(id uint16, topic string, qos byte, payload []byte, stamp int64, flush bool) error {
	if qos > 0 {
		c.stamps[id].Store(stamp)
		c.inflight[id].Store(true)
	}
	c.wmu.Lock()
	c.wbuf = appendPublish(c.wbuf[:0], c.version, topic, qos, id, false, false, payload)
	_, err := c.bw.Write(c.wbuf)
	if err == nil && flush {
		err = c.bw.Flush()
	}
	c.wmu.Unlock()
	if err != nil {
		return c.writeFailed(err)
	}
	return nil
}

// Flush writes out everything buffered.
func (c *Client) Flush() error {
	c.wmu.Lock()
	err := c.bw.Flush()
	c.wmu.Unlock()
	if err != nil {
		return c.writeFailed(err)
	}
	return nil
}

func (c *Client) writeFailed(err error) error {
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	_ = c.conn.Close()
	return fmt.Errorf("write: %w", err)
}

// Subscribe subscribes to filters at qos and waits for the SUBACK.
func (c *Client) Subscribe(ctx context.Context, qos byte, filters ...string) error {
	id, err := c.acquire(ctx)
	if err != nil {
		return err
	}
	ch := make(chan error, 1)
	c.subMu.Lock()
	c.subWait[id] = ch
	c.subMu.Unlock()
	c.wmu.Lock()
	c.wbuf = appendSubscribe(c.wbuf[:0], c.version, id, filters, qos)
	c.bw.Write(c.wbuf)
	err = c.bw.Flush()
	c.wmu.Unlock()
	if err != nil {
		return c.writeFailed(err)
	}
	select {
	case err := <-ch:
		return err
	case <-c.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close sends DISCONNECT, closes the connection and waits for the reader to stop.
func (c *Client) Close() error {
	c.stopPing()
	c.graceful.Store(true)
	// A deadline first, so a writer blocked on a full socket lets go of wmu.
	_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	c.wmu.Lock()
	c.bw.Write([]byte{typeDisconnect << 4, 0})
	_ = c.bw.Flush()
	c.wmu.Unlock()
	_ = c.conn.Close()
	<-c.done
	return nil
}

// Abort closes the connection without DISCONNECT (as a crashed client would)
// and waits for the reader to stop.
func (c *Client) Abort() {
	c.stopPing()
	_ = c.conn.Close()
	<-c.done
}

func (c *Client) stopPing() {
	c.pmu.Lock()
	c.closing = true
	if c.ping != nil {
		c.ping.Stop()
	}
	c.pmu.Unlock()
}

func (c *Client) readLoop() {
	err := c.read()
	c.stopPing()
	_ = c.conn.Close()
	if c.graceful.Load() {
		err = nil
	} else if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	c.err = err
	c.subMu.Lock()
	for id, ch := range c.subWait {
		ch <- ErrClosed
		delete(c.subWait, id)
	}
	c.subMu.Unlock()
	if c.h.OnClose != nil {
		c.h.OnClose(err)
	}
	close(c.done)
}

func (c *Client) read() error {
	var (
		buf     []byte
		m       Message
		pending bool // acks buffered but not flushed
	)
	for {
		h, body, nb, err := readPacket(c.br, buf)
		buf = nb
		if err != nil {
			return err
		}
		switch h >> 4 {
		case typePublish:
			if err := decodePublish(h, body, c.version, &m); err != nil {
				return err
			}
			if c.h.OnPublish != nil {
				c.h.OnPublish(&m)
			}
			switch m.QoS {
			case 1:
				c.writeAck(typePuback, m.PacketID)
				pending = true
			case 2:
				c.writeAck(typePubrec, m.PacketID)
				pending = true
			}
		case typePuback, typePubcomp:
			id, reason, err := ackFields(body)
			if err != nil {
				return err
			}
			c.completed(id, reason)
		case typePubrec:
			id, reason, err := ackFields(body)
			if err != nil {
				return err
			}
			if reason >= 0x80 {
				c.completed(id, reason)
				break
			}
			c.writeAck(typePubrel, id)
			pending = true
		case typePubrel:
			id, _, err := ackFields(body)
			if err != nil {
				return err
			}
			c.writeAck(typePubcomp, id)
			pending = true
		case typeSuback:
			if err := c.suback(body); err != nil {
				return err
			}
		case typePingresp:
		case typeDisconnect:
			var reason byte
			if len(body) > 0 {
				reason = body[0]
			}
			return fmt.Errorf("%w: reason 0x%02x", ErrServerDisconnect, reason)
		default:
			return fmt.Errorf("%w: unexpected packet type %d", ErrProtocol, h>>4)
		}
		if pending && c.br.Buffered() == 0 {
			if err := c.Flush(); err != nil {
				return err
			}
			pending = false
		}
	}
}

func ackFields(body []byte) (uint16, byte, error) {
	if len(body) < 2 {
		return 0, 0, fmt.Errorf("%w: short ack", ErrProtocol)
	}
	var reason byte
	if len(body) > 2 {
		reason = body[2]
	}
	return binary.BigEndian.Uint16(body), reason, nil
}

func (c *Client) writeAck(typ byte, id uint16) {
	c.wmu.Lock()
	c.wbufAck(typ, id)
	c.wmu.Unlock()
}

func (c *Client) wbufAck(typ byte, id uint16) {
	var a [4]byte
	c.bw.Write(appendAck(a[:0], typ, id))
}

func (c *Client) completed(id uint16, reason byte) {
	if int(id) >= len(c.inflight) || !c.inflight[id].Swap(false) {
		return // not ours (or already completed): ignore
	}
	stamp := c.stamps[id].Load()
	if c.h.OnAck != nil {
		c.h.OnAck(id, stamp, reason)
	}
	c.release(id)
}

func (c *Client) suback(body []byte) error {
	if len(body) < 3 {
		return fmt.Errorf("%w: short suback", ErrProtocol)
	}
	id := binary.BigEndian.Uint16(body)
	codes := body[2:]
	if c.version == V5 {
		pl, n, err := varint(codes)
		if err != nil || len(codes) < n+pl {
			return fmt.Errorf("%w: bad suback properties", ErrProtocol)
		}
		codes = codes[n+pl:]
	}
	var err error
	for _, code := range codes {
		if code >= 0x80 {
			err = fmt.Errorf("%w: code 0x%02x", ErrSubscribeRefused, code)
		}
	}
	c.subMu.Lock()
	ch, ok := c.subWait[id]
	delete(c.subWait, id)
	c.subMu.Unlock()
	if ok {
		ch <- err
		c.release(id)
	}
	return nil
}
