package store

import (
	"encoding/binary"
	"fmt"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Value layout: byte 0 is the value format version, byte 1 the record kind
// (the same byte as the key kind), then the fields in a fixed order, each a
// byte, a uvarint, a zigzag varint or a uvarint-length-prefixed byte string.
// Decoders reject unknown versions, wrong kinds, truncation and trailing
// bytes with ErrCorrupt.
const valueVersion byte = 1

// Stages of a stored message.
const (
	stagePublish byte = 1 // outbound PUBLISH not yet acknowledged (PUBACK / PUBREC)
	stagePubrel  byte = 2 // outbound QoS 2: PUBREC received, PUBREL sent, waiting for PUBCOMP
	stagePubrec  byte = 3 // inbound QoS 2: PUBREC sent, waiting for PUBREL
	stageRetain  byte = 4 // a retained message
)

// sessionRec is a persisted session.
type sessionRec struct {
	ProtocolVersion        byte
	Clean                  bool
	ExpirySet              bool // the CONNECT carried a Session Expiry Interval
	Username               []byte
	Listener               string
	ExpiryInterval         uint32
	Disconnected           int64 // unix seconds; 0 while connected
	ReceiveMaximum         uint16
	TopicAliasMaximum      uint16
	MaximumPacketSize      uint32
	RequestProblemInfo     byte
	RequestProblemInfoFlag bool
	RequestResponseInfo    byte
	User                   []packets.UserProperty
	Will                   willRec
}

// willRec is a session's will.
type willRec struct {
	Flag    uint32
	Topic   string
	Payload []byte
	Qos     byte
	Retain  bool
	Delay   uint32
	User    []packets.UserProperty
	// Due is when a delayed Will is to be published (unix seconds): set when
	// the connection ended abnormally with a Will Delay Interval, 0 when no
	// Will is pending. Optional at the end of the record (older records
	// have none).
	Due int64

	// The MQTT 5 Will properties besides the user properties, so that a
	// Will published after a restart carries them as a live one does
	// [MQTT-3.1.3-10]. Optional after Due (see willPropsSet).
	PayloadFormat     byte
	PayloadFormatFlag bool
	MessageExpiry     uint32 // the Will's Message Expiry Interval; counts from its publication
	ContentType       string
	ResponseTopic     string
	CorrelationData   []byte
}

// hasProps reports whether the Will carries any of the optional properties
// written after Due.
func (w *willRec) hasProps() bool {
	return w.PayloadFormatFlag || w.PayloadFormat != 0 || w.MessageExpiry != 0 ||
		w.ContentType != "" || w.ResponseTopic != "" || len(w.CorrelationData) > 0
}

// subRec is a persisted subscription; the client and filter are in the key.
type subRec struct {
	Qos               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	Identifier        int
}

// msgRec is a persisted message: outbound (queued or inflight), inbound
// QoS 2 awaiting PUBREL, or retained.
type msgRec struct {
	Stage           byte
	Qos             byte
	Retain          bool
	Dup             bool
	PacketID        uint16
	ProtocolVersion byte
	Created         int64
	Expiry          int64
	Origin          string
	Topic           string
	Payload         []byte

	PayloadFormat     byte
	PayloadFormatFlag bool
	MessageExpiry     uint32
	ContentType       string
	ResponseTopic     string
	CorrelationData   []byte
	User              []packets.UserProperty
	SubscriptionIDs   []int
}

// --- writer ---

type enc struct{ b []byte }

func newEnc(kind byte, size int) *enc {
	e := &enc{b: make([]byte, 0, size+2)}
	e.b = append(e.b, valueVersion, kind)
	return e
}
func (e *enc) byte1(v byte)   { e.b = append(e.b, v) }
func (e *enc) uv(v uint64)    { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) sv(v int64)     { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) bytes(v []byte) { e.uv(uint64(len(v))); e.b = append(e.b, v...) }
func (e *enc) str(v string)   { e.uv(uint64(len(v))); e.b = append(e.b, v...) }
func (e *enc) flags(v ...bool) {
	var f byte
	for i, x := range v {
		if x {
			f |= 1 << i
		}
	}
	e.byte1(f)
}
func (e *enc) users(u []packets.UserProperty) {
	e.uv(uint64(len(u)))
	for _, p := range u {
		e.str(p.Key)
		e.str(p.Val)
	}
}

// --- reader ---

type dec struct {
	b   []byte
	err error
}

func newDec(kind byte, b []byte) *dec {
	d := &dec{b: b}
	if len(b) < 2 {
		d.fail("short value")
		return d
	}
	if b[0] != valueVersion {
		d.fail(fmt.Sprintf("value version %d", b[0]))
		return d
	}
	if b[1] != kind {
		d.fail(fmt.Sprintf("record kind %q, want %q", b[1], kind))
		return d
	}
	d.b = b[2:]
	return d
}

func (d *dec) fail(msg string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, msg)
	}
	d.b = nil
}

func (d *dec) byte1() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *dec) uv() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) uvMax(max uint64) uint64 {
	v := d.uv()
	if v > max {
		d.fail("value out of range")
		return 0
	}
	return v
}

func (d *dec) sv() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) raw() []byte {
	n := d.uv()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("length past end")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) bytes() []byte {
	v := d.raw()
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

func (d *dec) str() string { return string(d.raw()) }

func (d *dec) flags(v ...*bool) {
	f := d.byte1()
	for i, p := range v {
		*p = f&(1<<i) != 0
	}
}

func (d *dec) users() []packets.UserProperty {
	n := d.uv()
	if d.err != nil || n == 0 {
		return nil
	}
	if n > uint64(len(d.b)) { // each property takes at least 2 bytes
		d.fail("user property count past end")
		return nil
	}
	u := make([]packets.UserProperty, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		u = append(u, packets.UserProperty{Key: d.str(), Val: d.str()})
	}
	return u
}

func (d *dec) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

// --- records ---

func (r *sessionRec) encode() []byte {
	e := newEnc(kindSession, 64+len(r.Username)+len(r.Will.Payload)+len(r.Will.ContentType)+len(r.Will.ResponseTopic)+len(r.Will.CorrelationData))
	e.byte1(r.ProtocolVersion)
	e.flags(r.Clean, r.ExpirySet, r.RequestProblemInfoFlag, r.Will.Retain)
	e.bytes(r.Username)
	e.str(r.Listener)
	e.uv(uint64(r.ExpiryInterval))
	e.sv(r.Disconnected)
	e.uv(uint64(r.ReceiveMaximum))
	e.uv(uint64(r.TopicAliasMaximum))
	e.uv(uint64(r.MaximumPacketSize))
	e.byte1(r.RequestProblemInfo)
	e.byte1(r.RequestResponseInfo)
	e.users(r.User)
	e.uv(uint64(r.Will.Flag))
	e.str(r.Will.Topic)
	e.bytes(r.Will.Payload)
	e.byte1(r.Will.Qos)
	e.uv(uint64(r.Will.Delay))
	e.users(r.Will.User)
	e.sv(r.Will.Due)
	if r.Will.hasProps() {
		// willPropsSet: flags (bit 0: payload format present), payload
		// format, message expiry, content type, response topic,
		// correlation data.
		e.flags(r.Will.PayloadFormatFlag)
		e.byte1(r.Will.PayloadFormat)
		e.uv(uint64(r.Will.MessageExpiry))
		e.str(r.Will.ContentType)
		e.str(r.Will.ResponseTopic)
		e.bytes(r.Will.CorrelationData)
	}
	return e.b
}

func decodeSession(b []byte) (sessionRec, error) {
	var r sessionRec
	d := newDec(kindSession, b)
	r.ProtocolVersion = d.byte1()
	d.flags(&r.Clean, &r.ExpirySet, &r.RequestProblemInfoFlag, &r.Will.Retain)
	r.Username = d.bytes()
	r.Listener = d.str()
	r.ExpiryInterval = uint32(d.uvMax(1<<32 - 1))
	r.Disconnected = d.sv()
	r.ReceiveMaximum = uint16(d.uvMax(1<<16 - 1))
	r.TopicAliasMaximum = uint16(d.uvMax(1<<16 - 1))
	r.MaximumPacketSize = uint32(d.uvMax(1<<32 - 1))
	r.RequestProblemInfo = d.byte1()
	r.RequestResponseInfo = d.byte1()
	r.User = d.users()
	r.Will.Flag = uint32(d.uvMax(1<<32 - 1))
	r.Will.Topic = d.str()
	r.Will.Payload = d.bytes()
	r.Will.Qos = d.byte1()
	r.Will.Delay = uint32(d.uvMax(1<<32 - 1))
	r.Will.User = d.users()
	if d.err == nil && len(d.b) > 0 {
		r.Will.Due = d.sv()
	}
	// willPropsSet: optional after Due. Records written before the Will
	// properties were kept (and records whose Will has none) end at Due and
	// read as a Will without them. Appending an optional set at the end is
	// backward compatible, so the value format and schemaVersion stay 1;
	// an older build reading a record that has the set rejects it as
	// corrupt (trailing bytes): downgrades are not supported.
	if d.err == nil && len(d.b) > 0 {
		d.flags(&r.Will.PayloadFormatFlag)
		r.Will.PayloadFormat = d.byte1()
		r.Will.MessageExpiry = uint32(d.uvMax(1<<32 - 1))
		r.Will.ContentType = d.str()
		r.Will.ResponseTopic = d.str()
		r.Will.CorrelationData = d.bytes()
	}
	return r, d.done()
}

func (r *subRec) encode() []byte {
	e := newEnc(kindSub, 8)
	e.byte1(r.Qos)
	e.flags(r.NoLocal, r.RetainAsPublished)
	e.byte1(r.RetainHandling)
	e.uv(uint64(r.Identifier))
	return e.b
}

func decodeSub(b []byte) (subRec, error) {
	var r subRec
	d := newDec(kindSub, b)
	r.Qos = d.byte1()
	d.flags(&r.NoLocal, &r.RetainAsPublished)
	r.RetainHandling = d.byte1()
	r.Identifier = int(d.uvMax(268435455)) // [MQTT-3.8.2.1.2] max subscription identifier
	if d.err == nil && (r.Qos > 2 || r.RetainHandling > 2) {
		d.fail("subscription option out of range")
	}
	return r, d.done()
}

// encode writes the message under the given record kind (kindOutbound,
// kindInbound or kindRetained).
func (r *msgRec) encode(kind byte) []byte {
	return r.appendTo(make([]byte, 0, r.size()), kind)
}

// size is the encoded size of the message, or a little more.
func (r *msgRec) size() int {
	n := 50 + len(r.Topic) + len(r.Payload) + len(r.Origin) + len(r.ContentType) + len(r.ResponseTopic) + len(r.CorrelationData) + 5*len(r.SubscriptionIDs)
	for _, p := range r.User {
		n += 2*binary.MaxVarintLen32 + len(p.Key) + len(p.Val)
	}
	return n
}

// appendTo appends the message, encoded under the given record kind, to b.
func (r *msgRec) appendTo(b []byte, kind byte) []byte {
	e := enc{b: append(b, valueVersion, kind)}
	e.byte1(r.Stage)
	e.byte1(r.Qos)
	e.flags(r.Retain, r.Dup, r.PayloadFormatFlag)
	e.uv(uint64(r.PacketID))
	e.byte1(r.ProtocolVersion)
	e.sv(r.Created)
	e.sv(r.Expiry)
	e.str(r.Origin)
	e.str(r.Topic)
	e.bytes(r.Payload)
	e.byte1(r.PayloadFormat)
	e.uv(uint64(r.MessageExpiry))
	e.str(r.ContentType)
	e.str(r.ResponseTopic)
	e.bytes(r.CorrelationData)
	e.users(r.User)
	e.uv(uint64(len(r.SubscriptionIDs)))
	for _, id := range r.SubscriptionIDs {
		e.uv(uint64(id))
	}
	return e.b
}

// outboundRecord returns the key and value of cid's outbound record seq
// holding r, in one allocation.
func outboundRecord(cid string, seq uint64, r *msgRec) (key, val []byte) {
	b := make([]byte, 0, outboundKeyLen(cid)+r.size())
	b = appendOutboundKey(b, cid, seq)
	key = b[:len(b):len(b)]
	return key, r.appendTo(b[len(b):], kindOutbound)
}

func decodeMsg(kind byte, b []byte) (msgRec, error) {
	var r msgRec
	d := newDec(kind, b)
	r.Stage = d.byte1()
	r.Qos = d.byte1()
	d.flags(&r.Retain, &r.Dup, &r.PayloadFormatFlag)
	r.PacketID = uint16(d.uvMax(1<<16 - 1))
	r.ProtocolVersion = d.byte1()
	r.Created = d.sv()
	r.Expiry = d.sv()
	r.Origin = d.str()
	r.Topic = d.str()
	r.Payload = d.bytes()
	r.PayloadFormat = d.byte1()
	r.MessageExpiry = uint32(d.uvMax(1<<32 - 1))
	r.ContentType = d.str()
	r.ResponseTopic = d.str()
	r.CorrelationData = d.bytes()
	r.User = d.users()
	n := d.uv()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("subscription id count past end")
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		r.SubscriptionIDs = append(r.SubscriptionIDs, int(d.uvMax(268435455)))
	}
	if d.err == nil && (r.Qos > 2 || r.Stage < stagePublish || r.Stage > stageRetain) {
		d.fail("stage or qos out of range")
	}
	return r, d.done()
}

// msgFromPacket builds a record from a mochi packet.
func msgFromPacket(stage byte, pk packets.Packet) msgRec {
	return msgRec{
		Stage:             stage,
		Qos:               pk.FixedHeader.Qos,
		Retain:            pk.FixedHeader.Retain,
		Dup:               pk.FixedHeader.Dup,
		PacketID:          pk.PacketID,
		ProtocolVersion:   pk.ProtocolVersion,
		Created:           pk.Created,
		Expiry:            pk.Expiry,
		Origin:            pk.Origin,
		Topic:             pk.TopicName,
		Payload:           pk.Payload,
		PayloadFormat:     pk.Properties.PayloadFormat,
		PayloadFormatFlag: pk.Properties.PayloadFormatFlag,
		MessageExpiry:     pk.Properties.MessageExpiryInterval,
		ContentType:       pk.Properties.ContentType,
		ResponseTopic:     pk.Properties.ResponseTopic,
		CorrelationData:   pk.Properties.CorrelationData,
		User:              pk.Properties.User,
		SubscriptionIDs:   pk.Properties.SubscriptionIdentifier,
	}
}

// packet rebuilds the mochi packet a record stands for.
func (r *msgRec) packet() packets.Packet {
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{
			Type:   packets.Publish,
			Qos:    r.Qos,
			Retain: r.Retain,
			Dup:    r.Dup,
		},
		PacketID:        r.PacketID,
		ProtocolVersion: r.ProtocolVersion,
		Created:         r.Created,
		Expiry:          r.Expiry,
		Origin:          r.Origin,
		TopicName:       r.Topic,
		Payload:         r.Payload,
		Properties: packets.Properties{
			PayloadFormat:          r.PayloadFormat,
			PayloadFormatFlag:      r.PayloadFormatFlag,
			MessageExpiryInterval:  r.MessageExpiry,
			ContentType:            r.ContentType,
			ResponseTopic:          r.ResponseTopic,
			CorrelationData:        r.CorrelationData,
			User:                   r.User,
			SubscriptionIdentifier: r.SubscriptionIDs,
		},
	}
	switch r.Stage {
	case stagePubrel:
		pk = packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel, Qos: 1}, PacketID: r.PacketID, Created: r.Created, Expiry: r.Expiry}
	case stagePubrec:
		pk = packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: r.PacketID, Created: r.Created, Expiry: r.Expiry}
	}
	return pk
}
