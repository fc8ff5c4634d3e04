package broker

import (
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// validConn is the broker's inbound validating layer. Our listeners install
// it on every connection, under mochi: it parses each frame a client sends
// before mochi reads it and checks it against the MQTT 3.1, 3.1.1 and 5
// rules mochi does not enforce, or answers wrongly (a 3.1.1 CONNACK 0x82,
// silent closes where MQTT 5 wants a reason code, unknown topic aliases
// published to an empty topic, a password without a user name accepted, ...).
//
// On a violation it writes the answer the specification asks for itself
// (CONNACK during CONNECT, DISCONNECT with a reason code to an MQTT 5 client
// afterwards, nothing to a 3.x client), stops every later write, and returns
// an error to mochi's reader, which then closes the connection as on any
// read error (publishing the Will, as [MQTT-3.1.2-8] asks on a protocol
// error). Bytes before the offending packet reach mochi first, so the
// packets a client sent before it are processed and answered in order.
//
// The layer runs for every inbound byte: payloads are counted, not copied;
// only fixed headers, variable headers and properties are looked at.
type validConn struct {
	net.Conn
	lim inboundLimits

	wmu   sync.Mutex
	wdone bool // the layer has answered a violation: no more writes

	// Reader state, touched only by the connection's read goroutine.
	st       uint8
	hdr      byte // fixed header byte of the current packet
	remain   int  // its remaining length
	lenBytes int
	mult     int
	need     int    // head bytes needed before the head can be checked
	head     []byte // the head of the current packet (the whole body but for PUBLISH payloads)
	skip     int    // payload bytes still to pass
	start    int    // offset in the current chunk where the current packet began
	pending  *violation
	failed   error

	version   byte // protocol level of the CONNECT: 3, 4 or 5; 0 before
	connected bool // a CONNECT passed the checks
	clientMax uint32
	authFlow  bool     // the CONNECT named an Authentication Method
	aliases   []uint64 // bit set of topic aliases the client has set
	qos2      qos2In
}

// inboundLimits are the broker settings the validating layer enforces.
type inboundLimits struct {
	maxPacket uint32 // 0: none
	aliasMax  uint16
	recvMax   uint16 // Receive Maximum for MQTT 5 clients
	// reauth: authentication hooks may take AUTH packets (token refresh by
	// re-authentication) on connections that authenticated with a password.
	reauth bool
	log    *slog.Logger
}

const (
	stFixed = iota // the next byte starts a packet
	stLen          // reading the remaining length
	stHead         // collecting the head of a packet
	stSkip         // passing a PUBLISH payload

	// lingerTimeout bounds how long a refused connection's unread input is
	// drained after the answer, so closing does not reset the connection
	// (and discard the answer) while the client still sends.
	lingerTimeout = 250 * time.Millisecond
	lingerBytes   = 1 << 20
)

// topicAliasMaximum is the Topic Alias Maximum the broker announces to MQTT 5
// clients and enforces on their PUBLISH packets.
const topicAliasMaximum = 64

// validating wraps a connection accepted by one of the broker's listeners
// in the validating layer.
func (b *Broker) validating(c net.Conn) net.Conn {
	return &validConn{Conn: c, lim: inboundLimits{
		maxPacket: b.cfg.Limits.MaxPacketSize,
		aliasMax:  topicAliasMaximum,
		recvMax:   b.cfg.Limits.ReceiveMaximum,
		reauth:    b.cfg.AuthEnabled() || b.opts.auth,
		log:       b.log,
	}}
}

// setDeadlineSlack forwards the keepalive slack to the wrapped connection.
func (c *validConn) setDeadlineSlack(d time.Duration) {
	if s, ok := c.Conn.(slackConn); ok {
		s.setDeadlineSlack(d)
	}
}

// Write serialises writes: mochi writes whole packets with one call, and the
// layer's own answer must not land inside one of them or after it.
func (c *validConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wdone {
		return 0, net.ErrClosed
	}
	c.qos2.sent(p)
	return c.Conn.Write(p)
}

// Read reads from the connection and checks what it read. When a chunk holds
// a violation, the bytes before the offending packet are returned first; the
// next Read answers the violation and fails.
func (c *validConn) Read(p []byte) (int, error) {
	if c.failed != nil {
		return 0, c.failed
	}
	if c.pending != nil {
		return 0, c.fail(c.pending)
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if k, v := c.scan(p[:n]); v != nil {
			if k > 0 {
				c.pending = v
				return k, nil
			}
			return 0, c.fail(v)
		}
	}
	return n, err
}

// scan runs the packet state machine over one chunk. On a violation it
// returns the offset where the offending packet began in this chunk (0 when
// it began in an earlier one).
func (c *validConn) scan(b []byte) (int, *violation) {
	c.start = 0
	for i := 0; i < len(b); {
		switch c.st {
		case stFixed:
			c.start = i
			c.hdr = b[i]
			i++
			c.remain, c.mult, c.lenBytes = 0, 1, 0
			c.st = stLen
			if v := c.checkFixed(); v != nil {
				return c.start, v
			}
		case stLen:
			x := b[i]
			i++
			c.remain += int(x&0x7f) * c.mult
			c.mult *= 128
			c.lenBytes++
			if x&0x80 != 0 {
				if c.lenBytes == 4 { // [MQTT-1.5.5-1]
					return c.start, malformed("remaining length over four bytes")
				}
				continue
			}
			if v := c.begin(); v != nil {
				return c.start, v
			}
		case stHead:
			take := min(c.need-len(c.head), len(b)-i)
			c.head = append(c.head, b[i:i+take]...)
			i += take
			if len(c.head) < c.need {
				continue
			}
			if v := c.headReady(); v != nil {
				return c.start, v
			}
		case stSkip:
			take := min(c.skip, len(b)-i)
			c.skip -= take
			i += take
			if c.skip == 0 {
				c.st = stFixed
			}
		}
	}
	return 0, nil
}

// begin starts a packet once its remaining length is known.
func (c *validConn) begin() *violation {
	if c.lim.maxPacket > 0 && uint64(1+c.lenBytes+c.remain) > uint64(c.lim.maxPacket) {
		return &violation{code: 0x95, why: "packet too large"}
	}
	c.head = c.head[:0]
	if c.hdr>>4 == packets.Publish {
		c.need = 2
		if c.remain < 2 {
			return malformed("publish without topic name")
		}
	} else {
		c.need = c.remain
		if c.remain == 0 {
			c.st = stFixed
			return c.checkBody(nil)
		}
	}
	c.st = stHead
	return nil
}

// headReady runs when the head holds c.need bytes.
func (c *validConn) headReady() *violation {
	if c.hdr>>4 != packets.Publish {
		c.st = stFixed
		v := c.checkBody(c.head)
		c.shrinkHead()
		return v
	}
	need, final, v := publishNeed(c.head, c.hdr>>1&3, c.version == 5)
	if v != nil {
		return v
	}
	if need > c.remain {
		return malformed("publish fields exceed the remaining length")
	}
	if !final || need > len(c.head) {
		c.need = need
		return nil
	}
	if v := c.checkPublish(c.head); v != nil {
		return v
	}
	c.skip = c.remain - len(c.head)
	c.shrinkHead()
	c.st = stSkip
	if c.skip == 0 {
		c.st = stFixed
	}
	return nil
}

// shrinkHead drops a large head buffer (a big SUBSCRIBE, say) so an idle
// connection does not keep it.
func (c *validConn) shrinkHead() {
	if cap(c.head) > 4096 {
		c.head = nil
	}
}

// fail answers a violation and ends the connection's reading.
func (c *validConn) fail(v *violation) error {
	c.pending = nil
	c.failed = packets.Code{Code: v.code, Reason: v.why}
	c.lim.log.Debug("inbound packet refused", "remote", c.RemoteAddr().String(),
		"reason", v.why, "code", v.code, "version", c.version)
	var answer []byte
	switch {
	case !c.connected && c.version == 5:
		answer = connack5(v.code, v.why, c.clientMax) // [MQTT-3.2.2-7]
	case !c.connected && c.version != 0 && v.v3code != 0:
		answer = []byte{0x20, 2, 0, v.v3code}
	case c.connected && c.version == 5:
		answer = disconnect5(v.code, v.why, c.clientMax) // [MQTT-4.13.1-1]
	}
	c.wmu.Lock()
	wrote := false
	if !c.wdone && answer != nil {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(lingerTimeout))
		_, err := c.Conn.Write(answer)
		wrote = err == nil
	}
	c.wdone = true
	c.wmu.Unlock()
	if wrote {
		c.linger()
	}
	return c.failed
}

// linger half-closes the connection after an answer and drains what the
// client still sends, briefly: closing a socket with unread input resets it,
// and a reset can make the client lose the answer before reading it.
func (c *validConn) linger() {
	var inner net.Conn = c.Conn
	if d, ok := inner.(*deadlineConn); ok {
		inner = d.Conn
	}
	cw, ok := inner.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	buf := make([]byte, 4096)
	for total := 0; total < lingerBytes; {
		n, err := c.Conn.Read(buf)
		total += n
		if err != nil {
			return
		}
	}
}

// violation is a rule a client broke: the MQTT 5 reason code, the 3.x
// CONNACK return code (0: close without one) and a short description.
type violation struct {
	code   byte
	v3code byte
	why    string
}

func malformed(why string) *violation { return &violation{code: 0x81, why: "malformed packet: " + why} }
func protocolError(why string) *violation {
	return &violation{code: 0x82, why: "protocol error: " + why}
}

// connack5 is an MQTT 5 CONNACK refusing the connection with code and, if
// it fits the client's Maximum Packet Size, a Reason String.
func connack5(code byte, why string, clientMax uint32) []byte {
	return withReason(0x20, []byte{0, code}, why, clientMax)
}

// disconnect5 is an MQTT 5 DISCONNECT with code and, if it fits, a Reason
// String (allowed on DISCONNECT whatever Request Problem Information says,
// [MQTT-3.1.2-29]).
func disconnect5(code byte, why string, clientMax uint32) []byte {
	return withReason(0xE0, []byte{code}, why, clientMax)
}

func withReason(header byte, fixed []byte, why string, clientMax uint32) []byte {
	props := append([]byte{0x1F, byte(len(why) >> 8), byte(len(why))}, why...)
	body := append(append(append([]byte{}, fixed...), byte(len(props))), props...)
	if len(props) > 120 || (clientMax > 0 && uint32(len(body)+2) > clientMax) {
		body = append(append([]byte{}, fixed...), 0)
	}
	return append([]byte{header, byte(len(body))}, body...)
}
