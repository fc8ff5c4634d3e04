package broker

import (
	"encoding/binary"

	"github.com/mochi-mqtt/server/v2/packets"
)

// checkFixed checks a fixed header byte before its remaining length.
func (c *validConn) checkFixed() *violation {
	typ, flags := c.hdr>>4, c.hdr&0x0F
	if !c.connected {
		if typ != packets.Connect {
			return protocolError("first packet is not CONNECT") // [MQTT-3.1.0-1]
		}
	} else if typ == packets.Connect {
		return protocolError("second CONNECT") // [MQTT-3.1.0-2]
	}
	switch typ {
	case packets.Reserved:
		return malformed("reserved packet type 0")
	case packets.Publish:
		qos := flags >> 1 & 3
		if qos == 3 {
			return malformed("publish with QoS 3") // [MQTT-3.3.1-4]
		}
		if qos == 0 && flags&0x08 != 0 {
			return malformed("DUP set on a QoS 0 publish") // [MQTT-3.3.1-2]
		}
	case packets.Pubrel, packets.Subscribe, packets.Unsubscribe:
		if flags != 0x02 {
			return malformed("reserved fixed header flags") // [MQTT-2.1.3-1] [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1]
		}
	default:
		if flags != 0 {
			return malformed("reserved fixed header flags") // [MQTT-2.1.3-1]
		}
	}
	switch typ {
	case packets.Connack, packets.Suback, packets.Unsuback, packets.Pingresp:
		return protocolError("server packet sent by a client")
	case packets.Auth:
		if c.version < 5 {
			return malformed("reserved packet type 15")
		}
		if !c.authFlow && !c.lim.reauth {
			return protocolError("AUTH without an authentication method in CONNECT") // [MQTT-4.12.0-7]
		}
	}
	return nil
}

// checkBody checks a whole packet body (every type but PUBLISH).
func (c *validConn) checkBody(b []byte) *violation {
	switch c.hdr >> 4 {
	case packets.Connect:
		return c.checkConnect(b)
	case packets.Puback, packets.Pubrec, packets.Pubrel, packets.Pubcomp:
		return c.checkAck(b)
	case packets.Subscribe:
		return c.checkSubscribe(b)
	case packets.Unsubscribe:
		return c.checkUnsubscribe(b)
	case packets.Pingreq:
		if len(b) != 0 {
			return malformed("PINGREQ with a body")
		}
	case packets.Disconnect:
		return c.checkDisconnect(b)
	case packets.Auth:
		return c.checkAuth(b)
	}
	return nil
}

// checkAuth checks an AUTH packet's form; whether enhanced authentication
// is offered is up to the broker's authentication hooks.
func (c *validConn) checkAuth(b []byte) *violation {
	if len(b) == 0 {
		return nil
	}
	if b[0] != 0x00 && b[0] != 0x18 && b[0] != 0x19 {
		return protocolError("invalid AUTH reason code") // [MQTT-3.15.2-1]
	}
	r := reader{b: b, i: 1}
	if r.left() == 0 {
		return nil
	}
	var p propSet
	if v := p.parse(&r, packets.Auth); v != nil {
		return v
	}
	if r.left() != 0 {
		return malformed("bytes after the properties")
	}
	return nil
}

// reader reads MQTT data types from a packet body.
type reader struct {
	b []byte
	i int
}

func (r *reader) left() int { return len(r.b) - r.i }

func (r *reader) u8() (byte, bool) {
	if r.i >= len(r.b) {
		return 0, false
	}
	r.i++
	return r.b[r.i-1], true
}

func (r *reader) u16() (uint16, bool) {
	if r.left() < 2 {
		return 0, false
	}
	r.i += 2
	return binary.BigEndian.Uint16(r.b[r.i-2:]), true
}

func (r *reader) u32() (uint32, bool) {
	if r.left() < 4 {
		return 0, false
	}
	r.i += 4
	return binary.BigEndian.Uint32(r.b[r.i-4:]), true
}

// bin reads two-byte-length-prefixed data (strings and binary data).
func (r *reader) bin() ([]byte, bool) {
	n, ok := r.u16()
	if !ok || r.left() < int(n) {
		return nil, false
	}
	r.i += int(n)
	return r.b[r.i-int(n) : r.i], true
}

// varint reads a variable byte integer of at most four bytes.
func (r *reader) varint() (int, bool) {
	v, mult := 0, 1
	for k := 0; k < 4; k++ {
		x, ok := r.u8()
		if !ok {
			return 0, false
		}
		v += int(x&0x7f) * mult
		if x&0x80 == 0 {
			return v, true
		}
		mult *= 128
	}
	return 0, false
}

// checkConnect checks a CONNECT and records the client's protocol level.
func (c *validConn) checkConnect(b []byte) *violation {
	r := reader{b: b}
	name, ok := r.bin()
	if !ok {
		return malformed("protocol name")
	}
	level, ok := r.u8()
	if !ok {
		return malformed("protocol level")
	}
	switch n := string(name); {
	case n == "MQTT" && (level == 4 || level == 5), n == "MQIsdp" && level == 3:
	case n == "MQTT" || n == "MQIsdp":
		// [MQTT-3.1.2-2@3.1.1]: CONNACK 0x01 to a 3.x client. A level
		// above 5 is from a newer client, which reads MQTT 5's 0x84.
		// [MQTT-3.1.2-2]
		c.version = 4
		if level > 5 {
			c.version = 5
		}
		return &violation{code: 0x84, v3code: 0x01, why: "unsupported protocol version"}
	default:
		// [MQTT-3.1.2-1]: an MQTT 5 client may get 0x84; a 3.x one is
		// disconnected [MQTT-3.1.2-1@3.1.1].
		c.version = 4
		if level == 5 {
			c.version = 5
		}
		return &violation{code: 0x84, why: "unsupported protocol name"}
	}
	c.version = level
	flags, ok := r.u8()
	if !ok {
		return malformed("connect flags")
	}
	if _, ok := r.u16(); !ok {
		return malformed("keepalive")
	}
	if flags&0x01 != 0 {
		return malformed("reserved connect flag set") // [MQTT-3.1.2-3]
	}
	will, willQoS, willRetain := flags&0x04 != 0, flags>>3&3, flags&0x20 != 0
	user, pass := flags&0x80 != 0, flags&0x40 != 0
	switch {
	case !will && willQoS != 0:
		return malformed("will QoS without will flag") // [MQTT-3.1.2-11]
	case !will && willRetain:
		return malformed("will retain without will flag") // [MQTT-3.1.2-13]
	case willQoS == 3:
		return malformed("will QoS 3") // [MQTT-3.1.2-12]
	case level < 5 && pass && !user:
		return malformed("password flag without user name flag") // [MQTT-3.1.2-22@3.1.1]
	}
	if level == 5 {
		var p propSet
		if v := p.parse(&r, propConnect); v != nil {
			return v
		}
		if v := p.checkConnect(); v != nil {
			return v
		}
		c.clientMax = p.maxPacket
		c.authFlow = p.has(propAuthMethod)
	}
	id, ok := r.bin()
	if !ok {
		return malformed("client identifier")
	}
	if !validString(id) {
		return malformed("client identifier is not valid UTF-8") // [MQTT-3.1.3-4] [MQTT-1.5.4-1]
	}
	clean := flags&0x02 != 0
	switch {
	case level == 3 && (len(id) == 0 || len(id) > 23):
		// MQTT 3.1 allows 1 to 23 characters.
		return &violation{code: 0x85, v3code: 0x02, why: "client identifier not valid"}
	case level == 4 && len(id) == 0 && !clean:
		return &violation{code: 0x85, v3code: 0x02, why: "empty client identifier without clean session"} // [MQTT-3.1.3-8@3.1.1]
	}
	if will {
		if level == 5 {
			var p propSet
			if v := p.parse(&r, propWill); v != nil {
				return v
			}
			if v := p.checkPublish(); v != nil {
				return v
			}
		}
		topic, ok := r.bin()
		if !ok {
			return malformed("will topic") // [MQTT-3.1.2-9]
		}
		if v := checkTopicName(topic); v != nil {
			return v // [MQTT-3.1.3-11]
		}
		if _, ok := r.bin(); !ok {
			return malformed("will payload") // [MQTT-3.1.2-9]
		}
	}
	if user {
		u, ok := r.bin()
		if !ok {
			return malformed("user name") // [MQTT-3.1.2-17]
		}
		if !validString(u) {
			return malformed("user name is not valid UTF-8") // [MQTT-3.1.3-12]
		}
	}
	if pass {
		if _, ok := r.bin(); !ok {
			return malformed("password") // [MQTT-3.1.2-19]
		}
	}
	if r.left() != 0 {
		return malformed("bytes after the connect payload") // [MQTT-3.1.2-16] [MQTT-3.1.2-18]
	}
	c.connected = true
	return nil
}

// publishNeed returns how many head bytes a PUBLISH needs: topic, packet
// id and properties. final is false while the bytes so far do not yet
// tell the whole length; need is then more than len(h).
func publishNeed(h []byte, qos byte, v5 bool) (need int, final bool, v *violation) {
	if len(h) < 2 {
		return 2, false, nil
	}
	n := 2 + int(binary.BigEndian.Uint16(h))
	if qos > 0 {
		n += 2
	}
	if !v5 {
		return n, true, nil
	}
	for k, val, mult := 0, 0, 1; k < 4; k++ {
		if n+k >= len(h) {
			return n + k + 1, false, nil
		}
		x := h[n+k]
		val += int(x&0x7f) * mult
		mult *= 128
		if x&0x80 == 0 {
			return n + k + 1 + val, true, nil
		}
	}
	return 0, false, malformed("property length over four bytes")
}

// checkPublish checks a PUBLISH head: topic, packet id and properties.
func (c *validConn) checkPublish(h []byte) *violation {
	r := reader{b: h}
	topic, _ := r.bin()
	var id uint16
	if c.hdr>>1&3 > 0 {
		if id, _ = r.u16(); id == 0 {
			return protocolError("packet identifier 0") // [MQTT-2.2.1-3]
		}
	}
	if c.version < 5 {
		return checkTopicName(topic)
	}
	var p propSet
	if v := p.parse(&r, propPublish); v != nil {
		return v
	}
	if v := c.checkPublishProps(topic, &p); v != nil {
		return v
	}
	if c.hdr>>1&3 == 2 {
		return c.qos2.publish(id, c.lim.recvMax)
	}
	return nil
}

// checkPublishProps applies the MQTT 5 PUBLISH property and topic alias
// rules.
func (c *validConn) checkPublishProps(topic []byte, p *propSet) *violation {
	if p.has(propSubscriptionID) {
		return protocolError("subscription identifier from a client") // [MQTT-3.3.4-6]
	}
	if v := p.checkPublish(); v != nil {
		return v
	}
	if !p.has(propTopicAlias) {
		return checkTopicName(topic)
	}
	if p.alias == 0 || p.alias > c.lim.aliasMax {
		return &violation{code: 0x94, why: "topic alias invalid"} // [MQTT-3.3.2-8] [MQTT-3.3.2-9]
	}
	if len(topic) == 0 {
		if !c.aliasSet(p.alias) {
			return protocolError("unknown topic alias")
		}
		return nil
	}
	if v := checkTopicName(topic); v != nil {
		return v
	}
	c.setAlias(p.alias)
	return nil
}

func (c *validConn) aliasSet(a uint16) bool {
	w := int(a / 64)
	return w < len(c.aliases) && c.aliases[w]&(1<<(a%64)) != 0
}

func (c *validConn) setAlias(a uint16) {
	w := int(a / 64)
	for len(c.aliases) <= w {
		c.aliases = append(c.aliases, 0)
	}
	c.aliases[w] |= 1 << (a % 64)
}

// checkAck checks a PUBACK, PUBREC, PUBREL or PUBCOMP.
func (c *validConn) checkAck(b []byte) *violation {
	typ := c.hdr >> 4
	if len(b) < 2 {
		return malformed("acknowledgement without packet identifier")
	}
	if typ == packets.Pubrel && c.version == 5 {
		c.qos2.release(binary.BigEndian.Uint16(b))
	}
	if c.version < 5 {
		if len(b) != 2 {
			return malformed("acknowledgement longer than its packet identifier")
		}
		return nil
	}
	if len(b) == 2 {
		return nil
	}
	if !validAckReason(typ, b[2]) {
		return protocolError("invalid acknowledgement reason code") // [MQTT-3.4.2-1]
	}
	if len(b) == 3 {
		return nil
	}
	r := reader{b: b, i: 3}
	var p propSet
	if v := p.parse(&r, typ); v != nil {
		return v
	}
	if r.left() != 0 {
		return malformed("bytes after the properties")
	}
	return nil
}

func validAckReason(typ, code byte) bool {
	if typ == packets.Pubrel || typ == packets.Pubcomp {
		return code == 0x00 || code == 0x92
	}
	switch code {
	case 0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99:
		return true
	}
	return false
}

// checkSubscribe checks a SUBSCRIBE.
func (c *validConn) checkSubscribe(b []byte) *violation {
	r := reader{b: b}
	if v := c.filterListHead(&r, propSubscribe); v != nil {
		return v
	}
	for r.left() > 0 {
		f, ok := r.bin()
		if !ok {
			return malformed("topic filter")
		}
		opts, ok := r.u8()
		if !ok {
			return malformed("subscription options")
		}
		if !validString(f) {
			return malformed("topic filter is not valid UTF-8") // [MQTT-3.8.3-1]
		}
		if c.version < 5 {
			if opts&0xFC != 0 || opts&3 == 3 {
				return malformed("requested QoS") // [MQTT-3.8.3-4@3.1.1]
			}
			if v := checkTopicFilter(f, false); v != nil {
				return v
			}
			continue
		}
		switch {
		case opts&0xC0 != 0:
			return malformed("reserved subscription option bits") // [MQTT-3.8.3-5]
		case opts&3 == 3:
			return protocolError("maximum QoS 3")
		case opts>>4&3 == 3:
			return protocolError("retain handling 3")
		}
		if v := checkTopicFilter(f, true); v != nil {
			return v
		}
		if opts&0x04 != 0 && isShared(f) {
			return protocolError("no local on a shared subscription") // [MQTT-3.8.3-4]
		}
	}
	return nil
}

// filterListHead checks what SUBSCRIBE and UNSUBSCRIBE (kind) share before
// their filters: a non-zero packet identifier [MQTT-2.2.1-3], MQTT 5
// properties, and at least one filter after them ([MQTT-3.8.3-2]
// [MQTT-3.8.3-3@3.1.1] [MQTT-3.10.3-2]).
func (c *validConn) filterListHead(r *reader, kind byte) *violation {
	id, ok := r.u16()
	if !ok {
		return malformed("packet identifier")
	}
	if id == 0 {
		return protocolError("packet identifier 0")
	}
	if c.version == 5 {
		var p propSet
		if v := p.parse(r, kind); v != nil {
			return v
		}
	}
	if r.left() == 0 {
		if kind == propSubscribe {
			return protocolError("SUBSCRIBE without topic filter")
		}
		return protocolError("UNSUBSCRIBE without topic filter")
	}
	return nil
}

// checkUnsubscribe checks an UNSUBSCRIBE.
func (c *validConn) checkUnsubscribe(b []byte) *violation {
	r := reader{b: b}
	if v := c.filterListHead(&r, propUnsubscribe); v != nil {
		return v
	}
	for r.left() > 0 {
		f, ok := r.bin()
		if !ok {
			return malformed("topic filter")
		}
		if !validString(f) {
			return malformed("topic filter is not valid UTF-8") // [MQTT-3.10.3-1]
		}
		if v := checkTopicFilter(f, c.version == 5); v != nil {
			return v
		}
	}
	return nil
}

// checkDisconnect checks a DISCONNECT.
func (c *validConn) checkDisconnect(b []byte) *violation {
	if c.version < 5 {
		if len(b) != 0 {
			return malformed("DISCONNECT with a body")
		}
		return nil
	}
	if len(b) == 0 {
		return nil
	}
	if !validDisconnectReason(b[0]) {
		return protocolError("invalid DISCONNECT reason code") // [MQTT-3.14.2-1]
	}
	if len(b) == 1 {
		return nil
	}
	r := reader{b: b, i: 1}
	var p propSet
	if v := p.parse(&r, propDisconnect); v != nil {
		return v
	}
	if r.left() != 0 {
		return malformed("bytes after the properties")
	}
	return nil
}

func validDisconnectReason(code byte) bool {
	switch {
	case code == 0x00, code == 0x04:
		return true
	case code >= 0x80 && code <= 0xA2:
		return code != 0x84 && code != 0x85 && code != 0x86 && code != 0x88 && code != 0x8A && code != 0x8C && code != 0x91 && code != 0x92
	}
	return false
}
