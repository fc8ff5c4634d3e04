package mqtttest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Packet is one packet as read off the wire: the fixed header byte and the
// body after the remaining length.
type Packet struct {
	Header byte
	Body   []byte
}

// Type is the packet type (the high nibble of the header).
func (p Packet) Type() byte { return p.Header >> 4 }

// Flags are the low nibble of the header.
func (p Packet) Flags() byte { return p.Header & 0x0F }

// Bytes is the whole packet as it was on the wire.
func (p Packet) Bytes() []byte { return Frame(p.Header, p.Body) }

func (p Packet) String() string {
	return fmt.Sprintf("%s(header %#02x, body % x)", TypeName(p.Type()), p.Header, p.Body)
}

// ErrMalformed is returned by the decoders for a packet they cannot parse.
var ErrMalformed = errors.New("mqtttest: malformed packet")

// ReadPacket reads one packet.
func ReadPacket(r *bufio.Reader) (Packet, error) {
	h, err := r.ReadByte()
	if err != nil {
		return Packet{}, err
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return Packet{}, err
		}
		n += int(b&0x7f) * mult
		if b&0x80 == 0 {
			break
		}
		mult *= 128
		if i == 3 {
			return Packet{}, fmt.Errorf("%w: remaining length over four bytes", ErrMalformed)
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return Packet{}, err
	}
	return Packet{h, body}, nil
}

// Property is one decoded MQTT 5 property. Value holds the number for
// integer properties and Str/Key the text for strings, binary data and user
// properties.
type Property struct {
	ID    byte
	Value uint32 // byte, two-byte, four-byte and variable byte integers
	Str   string // UTF-8 strings and binary data; a user property's value
	Key   string // a user property's key
}

// Properties is a decoded property block, in wire order.
type Properties []Property

// Get returns the first property with the id.
func (ps Properties) Get(id byte) (Property, bool) {
	for _, p := range ps {
		if p.ID == id {
			return p, true
		}
	}
	return Property{}, false
}

// Has reports whether the property is present.
func (ps Properties) Has(id byte) bool { _, ok := ps.Get(id); return ok }

// All returns every property with the id (user properties, subscription
// identifiers).
func (ps Properties) All(id byte) []Property {
	var out []Property
	for _, p := range ps {
		if p.ID == id {
			out = append(out, p)
		}
	}
	return out
}

// propKind: 1 byte, 2 two-byte, 4 four-byte, 'v' varint, 's' string/binary,
// 'u' user property.
var propKind = map[byte]byte{
	0x01: 1, 0x02: 4, 0x03: 's', 0x08: 's', 0x09: 's', 0x0B: 'v', 0x11: 4, 0x12: 's',
	0x13: 2, 0x15: 's', 0x16: 's', 0x17: 1, 0x18: 4, 0x19: 1, 0x1A: 's', 0x1C: 's',
	0x1F: 's', 0x21: 2, 0x22: 2, 0x23: 2, 0x24: 1, 0x25: 1, 0x26: 'u', 0x27: 4,
	0x28: 1, 0x29: 1, 0x2A: 1,
}

// ParseProps decodes a property block (length first) and returns the rest.
func ParseProps(b []byte) (Properties, []byte, error) {
	n, used, err := varint(b)
	if err != nil || len(b) < used+n {
		return nil, nil, fmt.Errorf("%w: property length", ErrMalformed)
	}
	block, rest := b[used:used+n], b[used+n:]
	var ps Properties
	for len(block) > 0 {
		id := block[0]
		block = block[1:]
		p := Property{ID: id}
		switch propKind[id] {
		case 1:
			if len(block) < 1 {
				return nil, nil, fmt.Errorf("%w: property %#x", ErrMalformed, id)
			}
			p.Value, block = uint32(block[0]), block[1:]
		case 2:
			if len(block) < 2 {
				return nil, nil, fmt.Errorf("%w: property %#x", ErrMalformed, id)
			}
			p.Value, block = uint32(binary.BigEndian.Uint16(block)), block[2:]
		case 4:
			if len(block) < 4 {
				return nil, nil, fmt.Errorf("%w: property %#x", ErrMalformed, id)
			}
			p.Value, block = binary.BigEndian.Uint32(block), block[4:]
		case 'v':
			v, used, err := varint(block)
			if err != nil {
				return nil, nil, err
			}
			p.Value, block = uint32(v), block[used:]
		case 's':
			s, r, err := str(block)
			if err != nil {
				return nil, nil, err
			}
			p.Str, block = s, r
		case 'u':
			k, r, err := str(block)
			if err != nil {
				return nil, nil, err
			}
			v, r, err := str(r)
			if err != nil {
				return nil, nil, err
			}
			p.Key, p.Str, block = k, v, r
		default:
			return nil, nil, fmt.Errorf("%w: unknown property %#x", ErrMalformed, id)
		}
		ps = append(ps, p)
	}
	return ps, rest, nil
}

func varint(b []byte) (n, used int, err error) {
	mult := 1
	for i := 0; i < 4 && i < len(b); i++ {
		n += int(b[i]&0x7f) * mult
		if b[i]&0x80 == 0 {
			return n, i + 1, nil
		}
		mult *= 128
	}
	return 0, 0, fmt.Errorf("%w: variable byte integer", ErrMalformed)
}

func str(b []byte) (string, []byte, error) {
	if len(b) < 2 {
		return "", nil, fmt.Errorf("%w: string length", ErrMalformed)
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return "", nil, fmt.Errorf("%w: string", ErrMalformed)
	}
	return string(b[2 : 2+n]), b[2+n:], nil
}

// Connack is a decoded CONNACK.
type Connack struct {
	SessionPresent bool
	Reason         byte // the 3.x return code or the MQTT 5 reason code
	Props          Properties
}

// Connack decodes a CONNACK for the protocol version (3, 4 or 5).
func (p Packet) Connack(version byte) (Connack, error) {
	if p.Type() != CONNACK || len(p.Body) < 2 {
		return Connack{}, fmt.Errorf("%w: want CONNACK, got %s", ErrMalformed, p)
	}
	c := Connack{SessionPresent: p.Body[0]&1 == 1, Reason: p.Body[1]}
	if version == 5 && len(p.Body) > 2 {
		ps, _, err := ParseProps(p.Body[2:])
		if err != nil {
			return c, err
		}
		c.Props = ps
	}
	return c, nil
}

// Message is a decoded PUBLISH.
type Message struct {
	Topic    string
	QoS      byte
	Dup      bool
	Retain   bool
	PacketID uint16
	Props    Properties
	Payload  []byte
}

// Publish decodes a PUBLISH for the protocol version.
func (p Packet) Publish(version byte) (Message, error) {
	if p.Type() != PUBLISH {
		return Message{}, fmt.Errorf("%w: want PUBLISH, got %s", ErrMalformed, p)
	}
	m := Message{QoS: p.Header >> 1 & 3, Dup: p.Header&0x08 != 0, Retain: p.Header&1 != 0}
	topic, rest, err := str(p.Body)
	if err != nil {
		return m, err
	}
	m.Topic = topic
	if m.QoS > 0 {
		if len(rest) < 2 {
			return m, fmt.Errorf("%w: packet id", ErrMalformed)
		}
		m.PacketID, rest = binary.BigEndian.Uint16(rest), rest[2:]
	}
	if version == 5 {
		m.Props, rest, err = ParseProps(rest)
		if err != nil {
			return m, err
		}
	}
	m.Payload = rest
	return m, nil
}

// PubAck is a decoded PUBACK, PUBREC, PUBREL or PUBCOMP.
type PubAck struct {
	PacketID uint16
	Reason   byte // 0 when absent
	Props    Properties
}

// Ack decodes one of the four publish acknowledgements.
func (p Packet) Ack(version byte) (PubAck, error) {
	if t := p.Type(); t < PUBACK || t > PUBCOMP || len(p.Body) < 2 {
		return PubAck{}, fmt.Errorf("%w: want an acknowledgement, got %s", ErrMalformed, p)
	}
	a := PubAck{PacketID: binary.BigEndian.Uint16(p.Body)}
	if version == 5 && len(p.Body) > 2 {
		a.Reason = p.Body[2]
		if len(p.Body) > 3 {
			ps, _, err := ParseProps(p.Body[3:])
			if err != nil {
				return a, err
			}
			a.Props = ps
		}
	}
	return a, nil
}

// Suback is a decoded SUBACK or UNSUBACK (Codes is empty for a 3.x UNSUBACK).
type Suback struct {
	PacketID uint16
	Codes    []byte
	Props    Properties
}

// Suback decodes a SUBACK or UNSUBACK.
func (p Packet) Suback(version byte) (Suback, error) {
	if t := p.Type(); (t != SUBACK && t != UNSUBACK) || len(p.Body) < 2 {
		return Suback{}, fmt.Errorf("%w: want SUBACK or UNSUBACK, got %s", ErrMalformed, p)
	}
	s := Suback{PacketID: binary.BigEndian.Uint16(p.Body)}
	rest := p.Body[2:]
	if version == 5 {
		ps, r, err := ParseProps(rest)
		if err != nil {
			return s, err
		}
		s.Props, rest = ps, r
	}
	s.Codes = rest
	return s, nil
}

// Disconnect decodes a DISCONNECT (or AUTH): its reason code (0 when
// absent) and properties.
func (p Packet) Disconnect() (reason byte, props Properties, err error) {
	if t := p.Type(); t != DISCONNECT && t != AUTH {
		return 0, nil, fmt.Errorf("%w: want DISCONNECT or AUTH, got %s", ErrMalformed, p)
	}
	if len(p.Body) == 0 {
		return 0, nil, nil
	}
	reason = p.Body[0]
	if len(p.Body) > 1 {
		props, _, err = ParseProps(p.Body[1:])
	}
	return reason, props, err
}
