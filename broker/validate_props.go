package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Property contexts: the packet types, plus the Will Properties of a
// CONNECT, which have their own set.
const (
	propConnect     = packets.Connect
	propPublish     = packets.Publish
	propSubscribe   = packets.Subscribe
	propUnsubscribe = packets.Unsubscribe
	propDisconnect  = packets.Disconnect
	propWill        = 16
)

// MQTT 5 property identifiers the layer looks at.
const (
	propPayloadFormat       = 0x01
	propContentType         = 0x03
	propResponseTopic       = 0x08
	propSubscriptionID      = 0x0B
	propAuthMethod          = 0x15
	propAuthData            = 0x16
	propRequestProblemInfo  = 0x17
	propRequestResponseInfo = 0x19
	propReceiveMaximum      = 0x21
	propTopicAlias          = 0x23
	propUserProperty        = 0x26
	propMaximumPacketSize   = 0x27
)

// propKinds gives each property identifier's data type and the contexts a
// client may send it in (bit n: packet type n; bit 16: Will Properties).
// An identifier missing here, or used in another context, makes the packet
// malformed (MQTT 5 section 2.2.2.2).
var propKinds = func() (t [256]struct {
	kind  byte // 1, 2, 4: integer bytes; 'v' variable byte integer; 's' string; 'b' binary; 'u' string pair
	where uint32
}) {
	set := func(id, kind byte, where ...byte) {
		t[id].kind = kind
		for _, w := range where {
			t[id].where |= 1 << w
		}
	}
	ack := []byte{packets.Puback, packets.Pubrec, packets.Pubrel, packets.Pubcomp}
	set(0x01, 1, propPublish, propWill)
	set(0x02, 4, propPublish, propWill)
	set(0x03, 's', propPublish, propWill)
	set(0x08, 's', propPublish, propWill)
	set(0x09, 'b', propPublish, propWill)
	set(0x0B, 'v', propPublish, propSubscribe)
	set(0x11, 4, propConnect, propDisconnect)
	set(0x15, 's', propConnect, packets.Auth)
	set(0x16, 'b', propConnect, packets.Auth)
	set(0x17, 1, propConnect)
	set(0x18, 4, propWill)
	set(0x19, 1, propConnect)
	set(0x1C, 's', propDisconnect)
	set(0x1F, 's', append(ack, propDisconnect, packets.Auth)...)
	set(0x21, 2, propConnect)
	set(0x22, 2, propConnect)
	set(0x23, 2, propPublish)
	set(0x26, 'u', append(ack, propConnect, propPublish, propWill, propSubscribe, propUnsubscribe, propDisconnect, packets.Auth)...)
	set(0x27, 4, propConnect)
	return t
}()

// propSet is what the layer keeps of a property block.
type propSet struct {
	seen      [2]uint64 // identifiers present, for duplicates
	alias     uint16
	maxPacket uint32
	recvMax   uint16
	byteVal   [2]byte // request problem information, request response information
	respTopic []byte
	subID     int
}

func (p *propSet) has(id byte) bool { return p.seen[id/64]&(1<<(id%64)) != 0 }

// parse reads a property block (its length first) for context where.
func (p *propSet) parse(r *reader, where byte) *violation {
	n, ok := r.varint()
	if !ok || r.left() < n {
		return malformed("property length")
	}
	end := r.i + n
	block := reader{b: r.b[:end], i: r.i}
	r.i = end
	for block.left() > 0 {
		id, _ := block.u8()
		k := propKinds[id]
		if k.kind == 0 || k.where&(1<<where) == 0 {
			return malformed("property not valid for the packet")
		}
		if p.has(id) && id != propUserProperty {
			return protocolError("property included more than once")
		}
		p.seen[id/64] |= 1 << (id % 64)
		var ok bool
		switch k.kind {
		case 1:
			var v byte
			v, ok = block.u8()
			switch id {
			case propRequestProblemInfo:
				p.byteVal[0] = v
			case propRequestResponseInfo:
				p.byteVal[1] = v
			}
			if ok && (id == propRequestProblemInfo || id == propRequestResponseInfo) && v > 1 {
				return protocolError("request information value other than 0 or 1")
			}
		case 2:
			var v uint16
			v, ok = block.u16()
			switch id {
			case propTopicAlias:
				p.alias = v
			case propReceiveMaximum:
				p.recvMax = v
				if ok && v == 0 {
					return protocolError("receive maximum 0")
				}
			}
		case 4:
			var v uint32
			v, ok = block.u32()
			if id == propMaximumPacketSize {
				p.maxPacket = v
				if ok && v == 0 {
					return protocolError("maximum packet size 0")
				}
			}
		case 'v':
			p.subID, ok = block.varint()
			if ok && p.subID == 0 {
				return protocolError("subscription identifier 0")
			}
		case 'b':
			_, ok = block.bin()
		case 's':
			var s []byte
			s, ok = block.bin()
			if ok && !validString(s) {
				return malformed("property string is not valid UTF-8") // [MQTT-1.5.4-1] [MQTT-1.5.4-2]
			}
			if id == propResponseTopic {
				p.respTopic = s
			}
		case 'u':
			var k, v []byte
			k, ok = block.bin()
			if ok {
				v, ok = block.bin()
			}
			if ok && !(validString(k) && validString(v)) {
				return malformed("user property is not valid UTF-8") // [MQTT-1.5.7-1]
			}
		}
		if !ok {
			return malformed("property value")
		}
	}
	return nil
}

// checkConnect applies the CONNECT property rules.
func (p *propSet) checkConnect() *violation {
	if p.has(propAuthData) && !p.has(propAuthMethod) {
		return protocolError("authentication data without authentication method")
	}
	return nil
}

// checkPublish applies the PUBLISH (and Will) property rules.
func (p *propSet) checkPublish() *violation {
	if p.has(propResponseTopic) {
		if v := checkTopicName(p.respTopic); v != nil {
			return v // [MQTT-3.3.2-14]
		}
	}
	return nil
}

// announceLimits tells an MQTT 5 client the limits the validating layer
// enforces: the Topic Alias Maximum (mochi accepts aliases without
// announcing any maximum, and a client may only use aliases up to the
// announced value, [MQTT-3.2.2-17], [MQTT-3.2.2-18]) and the configured
// Receive Maximum (mochi would announce its own quota, see
// mochiReceiveMaximum).
func announceLimits(cl *mqtt.Client, pk packets.Packet, recvMax uint16) packets.Packet {
	if cl.Properties.ProtocolVersion == 5 {
		pk.Properties.ReceiveMaximum = recvMax
		if pk.ReasonCode < 0x80 {
			pk.Properties.TopicAliasMaximum = topicAliasMaximum
		}
	}
	return pk
}
