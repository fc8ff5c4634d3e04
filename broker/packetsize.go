package broker

import (
	"bytes"
	"strings"

	"github.com/mochi-mqtt/server/v2/packets"
)

// varintLen is the length of n as an MQTT variable byte integer.
func varintLen(n int) int {
	switch {
	case n < 128:
		return 1
	case n < 16384:
		return 2
	case n < 2097152:
		return 3
	default:
		return 4
	}
}

// publishLen is the exact size of pk as mochi will encode it, with every
// User Property (mochi may strip them to fit, which is not allowed for a
// PUBLISH: the caller drops the message instead). It computes rather than
// encodes, so it costs nothing but arithmetic.
func publishLen(pk packets.Packet) int {
	n := 2 + len(pk.TopicName) + len(pk.Payload)
	if pk.FixedHeader.Qos > 0 {
		n += 2
	}
	if pk.ProtocolVersion == 5 {
		p := &pk.Properties
		props := 0
		if p.PayloadFormatFlag {
			props += 2
		}
		if p.MessageExpiryInterval > 0 {
			props += 5
		}
		if p.ContentType != "" {
			props += 3 + len(p.ContentType)
		}
		if pk.Mods.AllowResponseInfo && p.ResponseTopic != "" && !strings.ContainsAny(p.ResponseTopic, "+#") {
			props += 3 + len(p.ResponseTopic)
		}
		if pk.Mods.AllowResponseInfo && len(p.CorrelationData) > 0 {
			props += 3 + len(p.CorrelationData)
		}
		for _, id := range p.SubscriptionIdentifier {
			if id > 0 {
				props += 1 + varintLen(id)
			}
		}
		if p.TopicAliasFlag && p.TopicAlias > 0 {
			props += 3
		}
		for _, u := range p.User {
			props += 5 + len(u.Key) + len(u.Val)
		}
		n += varintLen(props) + props
	}
	return 1 + varintLen(n) + n
}

// fitProperties leaves out the User Properties, and then the Reason String,
// of a packet other than PUBLISH while it is larger than the client's
// Maximum Packet Size [MQTT-3.1.2-24] [MQTT-3.2.2-19] [MQTT-3.2.2-20]
// [MQTT-3.4.2-2] [MQTT-3.4.2-3] [MQTT-3.5.2-2] [MQTT-3.5.2-3] [MQTT-3.6.2-2]
// [MQTT-3.6.2-3] [MQTT-3.7.2-2] [MQTT-3.7.2-3] [MQTT-3.9.2-1] [MQTT-3.9.2-2]
// [MQTT-3.11.2-1] [MQTT-3.11.2-2]. mochi's own trimming leaves out the fixed
// header from its count, so the packet it builds can still be too large and
// is then not sent at all.
func fitProperties(pk packets.Packet) packets.Packet {
	max := int(pk.Mods.MaxSize)
	if encodedLen(pk) <= max {
		return pk
	}
	if len(pk.Properties.User) > 0 {
		pk.Properties.User = nil
		if encodedLen(pk) <= max {
			return pk
		}
	}
	pk.Properties.ReasonString = ""
	return pk
}

// encodedLen encodes a copy of pk (without mochi's size-based trimming) and
// returns its size, or 0 for a type it does not measure.
func encodedLen(pk packets.Packet) int {
	pk.Mods.MaxSize = 0
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackEncode(&buf)
	case packets.Puback:
		err = pk.PubackEncode(&buf)
	case packets.Pubrec:
		err = pk.PubrecEncode(&buf)
	case packets.Pubrel:
		err = pk.PubrelEncode(&buf)
	case packets.Pubcomp:
		err = pk.PubcompEncode(&buf)
	case packets.Suback:
		err = pk.SubackEncode(&buf)
	case packets.Unsuback:
		err = pk.UnsubackEncode(&buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(&buf)
	case packets.Auth:
		err = pk.AuthEncode(&buf)
	default:
		return 0
	}
	if err != nil {
		return 0
	}
	return buf.Len()
}
