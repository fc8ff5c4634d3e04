package mqtttest

import "encoding/binary"

// Packet types, as the high nibble of the fixed header.
const (
	CONNECT     byte = 1
	CONNACK     byte = 2
	PUBLISH     byte = 3
	PUBACK      byte = 4
	PUBREC      byte = 5
	PUBREL      byte = 6
	PUBCOMP     byte = 7
	SUBSCRIBE   byte = 8
	SUBACK      byte = 9
	UNSUBSCRIBE byte = 10
	UNSUBACK    byte = 11
	PINGREQ     byte = 12
	PINGRESP    byte = 13
	DISCONNECT  byte = 14
	AUTH        byte = 15
)

// TypeName names a packet type for messages.
func TypeName(t byte) string {
	names := [...]string{"reserved(0)", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL",
		"PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"}
	if int(t) < len(names) {
		return names[t]
	}
	return "invalid"
}

// Varint encodes n as an MQTT variable byte integer. It does not check the
// four-byte limit, so tests can build over-long lengths.
func Varint(n int) []byte {
	var out []byte
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			return out
		}
	}
}

// U16 is a two-byte integer.
func U16(n uint16) []byte { return binary.BigEndian.AppendUint16(nil, n) }

// U32 is a four-byte integer.
func U32(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

// Str is a UTF-8 encoded string: a two-byte length, then the bytes as given
// (not checked, so tests can send malformed UTF-8).
func Str(s string) []byte { return Bin([]byte(s)) }

// Bin is binary data: a two-byte length, then the bytes.
func Bin(b []byte) []byte { return append(U16(uint16(len(b))), b...) }

// Cat concatenates byte slices.
func Cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Frame is a whole packet: the fixed header byte, the remaining length and
// the concatenated body parts.
func Frame(header byte, body ...[]byte) []byte {
	b := Cat(body...)
	return Cat([]byte{header}, Varint(len(b)), b)
}

// MQTT 5 property identifiers.
const (
	PropPayloadFormat       byte = 0x01
	PropMessageExpiry       byte = 0x02
	PropContentType         byte = 0x03
	PropResponseTopic       byte = 0x08
	PropCorrelationData     byte = 0x09
	PropSubscriptionID      byte = 0x0B
	PropSessionExpiry       byte = 0x11
	PropAssignedClientID    byte = 0x12
	PropServerKeepAlive     byte = 0x13
	PropAuthMethod          byte = 0x15
	PropAuthData            byte = 0x16
	PropRequestProblemInfo  byte = 0x17
	PropWillDelay           byte = 0x18
	PropRequestResponseInfo byte = 0x19
	PropResponseInfo        byte = 0x1A
	PropServerReference     byte = 0x1C
	PropReasonString        byte = 0x1F
	PropReceiveMaximum      byte = 0x21
	PropTopicAliasMaximum   byte = 0x22
	PropTopicAlias          byte = 0x23
	PropMaximumQoS          byte = 0x24
	PropRetainAvailable     byte = 0x25
	PropUserProperty        byte = 0x26
	PropMaximumPacketSize   byte = 0x27
	PropWildcardAvailable   byte = 0x28
	PropSubIDAvailable      byte = 0x29
	PropSharedSubAvailable  byte = 0x2A
)

// Byte, Short, Int, VarInt, String, Binary and User encode one property.
func Byte(id, v byte) []byte          { return []byte{id, v} }
func Short(id byte, v uint16) []byte  { return append([]byte{id}, U16(v)...) }
func Int(id byte, v uint32) []byte    { return append([]byte{id}, U32(v)...) }
func VarInt(id byte, v int) []byte    { return append([]byte{id}, Varint(v)...) }
func String(id byte, v string) []byte { return append([]byte{id}, Str(v)...) }
func Binary(id byte, v []byte) []byte { return append([]byte{id}, Bin(v)...) }
func User(key, value string) []byte   { return Cat([]byte{PropUserProperty}, Str(key), Str(value)) }

// Props is an MQTT 5 property block: its length, then the properties.
func Props(props ...[]byte) []byte {
	b := Cat(props...)
	return append(Varint(len(b)), b...)
}

// Will is the Will of a CONNECT.
type Will struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	Props   [][]byte // MQTT 5 Will properties, each built with Byte, Int, ...
}

// Connect describes a CONNECT packet. Zero values give a clean MQTT 5
// CONNECT with protocol name "MQTT" (or "MQIsdp" for version 3).
type Connect struct {
	Version      byte   // 3, 4 or 5; 0 means 5
	ProtocolName string // "" means the version's own name
	ClientID     string
	Keepalive    uint16
	Clean        bool    // clean session (3.x) / clean start (5)
	Username     *string // nil: no username flag
	Password     *string // nil: no password flag
	Will         *Will
	Props        [][]byte // MQTT 5 CONNECT properties
	Flags        *byte    // overrides the computed connect flags byte
	Header       byte     // overrides the fixed header byte (0 means 0x10)
}

// Encode builds the packet.
func (c Connect) Encode() []byte {
	v := c.version()
	name := c.ProtocolName
	if name == "" {
		name = "MQTT"
		if v == 3 {
			name = "MQIsdp"
		}
	}
	var flags byte
	if c.Clean {
		flags |= 0x02
	}
	if c.Will != nil {
		flags |= 0x04 | c.Will.QoS<<3
		if c.Will.Retain {
			flags |= 0x20
		}
	}
	if c.Password != nil {
		flags |= 0x40
	}
	if c.Username != nil {
		flags |= 0x80
	}
	if c.Flags != nil {
		flags = *c.Flags
	}
	body := Cat(Str(name), []byte{v, flags}, U16(c.Keepalive))
	if v == 5 {
		body = append(body, Props(c.Props...)...)
	}
	body = append(body, Str(c.ClientID)...)
	if c.Will != nil {
		if v == 5 {
			body = append(body, Props(c.Will.Props...)...)
		}
		body = Cat(body, Str(c.Will.Topic), Bin(c.Will.Payload))
	}
	if c.Username != nil {
		body = append(body, Str(*c.Username)...)
	}
	if c.Password != nil {
		body = append(body, Str(*c.Password)...)
	}
	h := c.Header
	if h == 0 {
		h = 0x10
	}
	return Frame(h, body)
}

func (c Connect) version() byte {
	if c.Version == 0 {
		return 5
	}
	return c.Version
}

// Ptr returns a pointer to s, for Connect.Username and Password.
func Ptr[T any](v T) *T { return &v }

// Publish describes a PUBLISH packet.
type Publish struct {
	Version  byte // 3, 4 or 5; 0 means 5
	Topic    string
	QoS      byte
	Retain   bool
	Dup      bool
	PacketID uint16 // used when QoS > 0
	Props    [][]byte
	Payload  []byte
}

// Encode builds the packet.
func (p Publish) Encode() []byte {
	h := 0x30 | p.QoS<<1
	if p.Dup {
		h |= 0x08
	}
	if p.Retain {
		h |= 0x01
	}
	body := Str(p.Topic)
	if p.QoS > 0 {
		body = append(body, U16(p.PacketID)...)
	}
	if p.Version == 0 || p.Version == 5 {
		body = append(body, Props(p.Props...)...)
	}
	return Frame(h, body, p.Payload)
}

// Sub is one topic filter of a SUBSCRIBE with its options byte (QoS in bits
// 0-1; MQTT 5 adds no-local 0x04, retain-as-published 0x08, retain handling
// bits 4-5).
type Sub struct {
	Filter  string
	Options byte
}

// Subscribe builds a SUBSCRIBE. version is 3, 4 or 5.
func Subscribe(version byte, id uint16, props [][]byte, subs ...Sub) []byte {
	body := U16(id)
	if version == 5 {
		body = append(body, Props(props...)...)
	}
	for _, s := range subs {
		body = Cat(body, Str(s.Filter), []byte{s.Options})
	}
	return Frame(0x82, body)
}

// Unsubscribe builds an UNSUBSCRIBE. version is 3, 4 or 5.
func Unsubscribe(version byte, id uint16, props [][]byte, filters ...string) []byte {
	body := U16(id)
	if version == 5 {
		body = append(body, Props(props...)...)
	}
	for _, f := range filters {
		body = append(body, Str(f)...)
	}
	return Frame(0xA2, body)
}

// Ack builds a PUBACK, PUBREC, PUBREL or PUBCOMP (kind is the packet type).
// In MQTT 5 a reason code other than 0 (or any properties) is encoded; in
// 3.x only the packet id.
func Ack(version, kind byte, id uint16, reason byte, props ...[]byte) []byte {
	h := kind << 4
	if kind == PUBREL {
		h |= 0x02
	}
	body := U16(id)
	if version == 5 && (reason != 0 || len(props) > 0) {
		body = append(body, reason)
		if len(props) > 0 {
			body = append(body, Props(props...)...)
		}
	}
	return Frame(h, body)
}

// Disconnect builds a DISCONNECT; 3.x ignores reason and props.
func Disconnect(version, reason byte, props ...[]byte) []byte {
	if version != 5 {
		return []byte{0xE0, 0}
	}
	return Frame(0xE0, []byte{reason}, Props(props...))
}

// Pingreq is a PINGREQ.
func Pingreq() []byte { return []byte{0xC0, 0} }
