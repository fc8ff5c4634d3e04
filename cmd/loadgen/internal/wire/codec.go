package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// Protocol versions (the CONNECT protocol level byte).
const (
	V311 byte = 4
	V5   byte = 5
)

// Packet types, in the high nibble of the fixed header.
const (
	typeConnect    = 1
	typeConnack    = 2
	typePublish    = 3
	typePuback     = 4
	typePubrec     = 5
	typePubrel     = 6
	typePubcomp    = 7
	typeSubscribe  = 8
	typeSuback     = 9
	typePingreq    = 12
	typePingresp   = 13
	typeDisconnect = 14
)

// maxPacket bounds what the reader accepts, far above anything loadgen sends.
const maxPacket = 64 << 20

func appendVarint(b []byte, n int) []byte {
	for {
		c := byte(n % 128)
		n /= 128
		if n > 0 {
			c |= 0x80
		}
		b = append(b, c)
		if n == 0 {
			return b
		}
	}
}

func appendU16(b []byte, v uint16) []byte { return append(b, byte(v>>8), byte(v)) }

func appendString(b []byte, s string) []byte {
	b = appendU16(b, uint16(len(s)))
	return append(b, s...)
}

// ConnectOptions is what goes into CONNECT.
type ConnectOptions struct {
	Version       byte   // V311 or V5 (default V5)
	ClientID      string // may be empty with CleanStart
	Username      string
	Password      string
	Keepalive     uint16 // seconds; 0 disables PINGREQ
	CleanStart    bool
	SessionExpiry uint32 // MQTT 5 only, seconds
	// Inflight caps our own QoS 1/2 messages (and SUBSCRIBEs) outstanding at
	// once; the server's Receive Maximum lowers it further. Default 256.
	Inflight int
	// BufferSize is the size of the read and the write buffer. Default 4096.
	BufferSize int
}

func appendConnect(b []byte, o *ConnectOptions) []byte {
	var vh []byte
	vh = appendString(vh, "MQTT")
	vh = append(vh, o.Version)
	var flags byte
	if o.CleanStart {
		flags |= 0x02
	}
	if o.Username != "" {
		flags |= 0x80
	}
	if o.Password != "" {
		flags |= 0x40
	}
	vh = append(vh, flags)
	vh = appendU16(vh, o.Keepalive)
	if o.Version == V5 {
		var props []byte
		if o.SessionExpiry > 0 {
			props = append(props, 0x11)
			props = binary.BigEndian.AppendUint32(props, o.SessionExpiry)
		}
		// No Receive Maximum: the default 65535 lets the server send as fast as it
		// can (mochi holds back deliveries beyond a small client Receive Maximum
		// until the next reconnect).
		props = append(props, 0x17, 1) // Request Problem Information
		vh = appendVarint(vh, len(props))
		vh = append(vh, props...)
	}
	vh = appendString(vh, o.ClientID)
	if o.Username != "" {
		vh = appendString(vh, o.Username)
	}
	if o.Password != "" {
		vh = appendString(vh, o.Password)
	}
	b = append(b, typeConnect<<4)
	b = appendVarint(b, len(vh))
	return append(b, vh...)
}

func appendPublish(b []byte, v byte, topic string, qos byte, id uint16, dup, retain bool, payload []byte) []byte {
	h := byte(typePublish<<4) | qos<<1
	if dup {
		h |= 0x08
	}
	if retain {
		h |= 0x01
	}
	n := 2 + len(topic) + len(payload)
	if qos > 0 {
		n += 2
	}
	if v == V5 {
		n++ // empty properties
	}
	b = append(b, h)
	b = appendVarint(b, n)
	b = appendString(b, topic)
	if qos > 0 {
		b = appendU16(b, id)
	}
	if v == V5 {
		b = append(b, 0)
	}
	return append(b, payload...)
}

func appendAck(b []byte, typ byte, id uint16) []byte {
	h := typ << 4
	if typ == typePubrel {
		h |= 0x02 // [MQTT-3.6.1-1]
	}
	return append(b, h, 2, byte(id>>8), byte(id))
}

func appendSubscribe(b []byte, v byte, id uint16, filters []string, qos byte) []byte {
	n := 2
	for _, f := range filters {
		n += 2 + len(f) + 1
	}
	if v == V5 {
		n++
	}
	b = append(b, typeSubscribe<<4|0x02) // [MQTT-3.8.1-1]
	b = appendVarint(b, n)
	b = appendU16(b, id)
	if v == V5 {
		b = append(b, 0)
	}
	for _, f := range filters {
		b = appendString(b, f)
		b = append(b, qos)
	}
	return b
}

// readPacket reads one packet into buf (grown as needed) and returns its
// fixed-header byte and body.
func readPacket(r *bufio.Reader, buf []byte) (byte, []byte, []byte, error) {
	h, err := r.ReadByte()
	if err != nil {
		return 0, nil, buf, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, nil, buf, unexpectedEOF(err)
		}
		n += int(c&0x7f) * mul
		if c&0x80 == 0 {
			break
		}
		mul *= 128
		if i == 3 {
			return 0, nil, buf, fmt.Errorf("%w: remaining length too long", ErrProtocol)
		}
	}
	if n > maxPacket {
		return 0, nil, buf, fmt.Errorf("%w: packet of %d bytes", ErrProtocol, n)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	body := buf[:n]
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, buf, unexpectedEOF(err)
	}
	return h, body, buf, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ReadFrame reads one raw MQTT packet (fixed header, length and body) from r,
// for tools such as test proxies that need packet boundaries.
func ReadFrame(r *bufio.Reader) (frame []byte, err error) {
	h, body, _, err := readPacket(r, nil)
	if err != nil {
		return nil, err
	}
	f := append([]byte{h}, appendVarint(nil, len(body))...)
	return append(f, body...), nil
}

// IsPublish reports whether a frame from ReadFrame is a PUBLISH.
func IsPublish(frame []byte) bool { return len(frame) > 0 && frame[0]>>4 == typePublish }

// Message is a received PUBLISH. Topic and Payload alias the reader's buffer
// and are valid only during the OnPublish call.
type Message struct {
	Topic    []byte
	Payload  []byte
	QoS      byte
	Dup      bool
	Retain   bool
	PacketID uint16
}

func decodePublish(h byte, body []byte, v byte, m *Message) error {
	m.QoS = (h >> 1) & 3
	m.Dup = h&0x08 != 0
	m.Retain = h&0x01 != 0
	if m.QoS == 3 || len(body) < 2 {
		return fmt.Errorf("%w: bad publish", ErrProtocol)
	}
	tl := int(binary.BigEndian.Uint16(body))
	p := 2 + tl
	if len(body) < p {
		return fmt.Errorf("%w: short publish topic", ErrProtocol)
	}
	m.Topic = body[2:p]
	m.PacketID = 0
	if m.QoS > 0 {
		if len(body) < p+2 {
			return fmt.Errorf("%w: short publish id", ErrProtocol)
		}
		m.PacketID = binary.BigEndian.Uint16(body[p:])
		p += 2
	}
	if v == V5 {
		pl, n, err := varint(body[p:])
		if err != nil || len(body) < p+n+pl {
			return fmt.Errorf("%w: bad publish properties", ErrProtocol)
		}
		p += n + pl
	}
	m.Payload = body[p:]
	return nil
}

// varint decodes a variable byte integer, returning value and bytes used.
func varint(b []byte) (int, int, error) {
	n, mul := 0, 1
	for i := 0; i < 4 && i < len(b); i++ {
		n += int(b[i]&0x7f) * mul
		if b[i]&0x80 == 0 {
			return n, i + 1, nil
		}
		mul *= 128
	}
	return 0, 0, fmt.Errorf("%w: bad variable byte integer", ErrProtocol)
}

// Connack is the server's answer to CONNECT.
type Connack struct {
	SessionPresent bool
	Code           byte
	ReceiveMaximum uint16 // 0 when the server sent none
}

func decodeConnack(body []byte, v byte) (Connack, error) {
	var c Connack
	if len(body) < 2 {
		return c, fmt.Errorf("%w: short connack", ErrProtocol)
	}
	c.SessionPresent = body[0]&1 != 0
	c.Code = body[1]
	if v != V5 || len(body) == 2 {
		return c, nil
	}
	pl, n, err := varint(body[2:])
	if err != nil || len(body) < 2+n+pl {
		return c, fmt.Errorf("%w: bad connack properties", ErrProtocol)
	}
	props := body[2+n : 2+n+pl]
	for len(props) > 0 {
		id := props[0]
		props = props[1:]
		var skip int
		switch id {
		case 0x21: // Receive Maximum
			if len(props) >= 2 {
				c.ReceiveMaximum = binary.BigEndian.Uint16(props)
			}
			skip = 2
		case 0x24, 0x25, 0x28, 0x29, 0x2A: // byte properties
			skip = 1
		case 0x13, 0x22: // two-byte integers
			skip = 2
		case 0x11, 0x27: // four-byte integers
			skip = 4
		case 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F: // strings or binary data
			if len(props) < 2 {
				return c, nil
			}
			skip = 2 + int(binary.BigEndian.Uint16(props))
		case 0x26: // user property: two strings
			if len(props) < 2 {
				return c, nil
			}
			k := 2 + int(binary.BigEndian.Uint16(props))
			if len(props) < k+2 {
				return c, nil
			}
			skip = k + 2 + int(binary.BigEndian.Uint16(props[k:]))
		default:
			return c, nil // unknown: stop parsing, what we need is usually first
		}
		if skip > len(props) {
			return c, nil
		}
		props = props[skip:]
	}
	return c, nil
}
