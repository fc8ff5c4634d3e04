package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// MQTT 3.1 ("MQIsdp", protocol level 3) differs from 3.1.1 where mochi
// treats them alike: the client identifier must be 1 to 23 characters, and
// the CONNACK has no Session Present flag (its first byte is reserved, 0).
const protocolMQIsdp = 3

// mqisdpMaxClientID is the longest client identifier of MQTT 3.1.
const mqisdpMaxClientID = 23

// checkClientID refuses the client identifiers the MQTT 3 specifications
// reject with CONNACK 0x02 (Identifier rejected). MQTT 3.1 allows 1 to 23
// characters, and mochi assigns an id to a 3.1 client that sent none or
// takes a long one. [MQIsdp-3] (A 3.1.1 client with an empty id and clean
// session 0 is refused by mochi already, with the wrong code: fixConnack
// corrects it.)
func (h *lifecycleHook) checkClientID(cl *mqtt.Client, pk packets.Packet) error {
	if id := pk.Connect.ClientIdentifier; cl.Properties.ProtocolVersion == protocolMQIsdp && (id == "" || len(id) > mqisdpMaxClientID) {
		return refuseConnack(cl, packets.Err3ClientIdentifierNotValid)
	}
	return nil
}

// refuseConnack sends a refusing CONNACK from OnConnect and returns the
// error that makes mochi close the connection without going further.
func refuseConnack(cl *mqtt.Client, code packets.Code) error {
	ack := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connack},
		ReasonCode:  code.Code,
	}
	if cl.Properties.ProtocolVersion == 5 {
		ack.Properties.ReasonString = code.Reason // dropped if the client asked for no problem info
	}
	_ = cl.WritePacket(ack) // the connection is closed next either way
	return code
}

// fixConnack corrects mochi's CONNACK before it is encoded.
func (h *lifecycleHook) fixConnack(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	v := cl.Properties.ProtocolVersion
	// mochi enforces a maximum packet size on what clients send but never
	// announces it, so a client cannot know its limit. (The Topic Alias
	// Maximum is announced by announceTopicAliases.)
	if v == 5 && pk.ReasonCode < packets.ErrUnspecifiedError.Code {
		pk.Properties.MaximumPacketSize = h.b.cfg.Limits.MaxPacketSize
	}
	// mochi refuses an empty client id with clean session 0 with 0x80,
	// which is no MQTT 3 return code. ParseConnect has already assigned
	// the client an id, so the empty one shows as an assigned id.
	// [MQTT-3.1.3-8@3.1.1]
	if v < 5 && pk.ReasonCode == packets.ErrUnspecifiedError.Code &&
		!cl.Properties.Clean && cl.Properties.Props.AssignedClientID != "" {
		pk.ReasonCode = packets.Err3ClientIdentifierNotValid.Code
		pk.SessionPresent = false
	}
	// MQTT 3.1's CONNACK has no Session Present flag: the byte is reserved.
	// [MQIsdp-6]
	if v == protocolMQIsdp {
		pk.SessionPresent = false
	}
	return pk
}

// fixDisconnect stops mochi from sending DISCONNECT to an MQTT 3 client:
// in 3.1 and 3.1.1 only a client sends DISCONNECT, and the server closes
// the connection instead (session takeover, a refused PUBLISH, shutdown).
// mochi's DisconnectClient writes one whatever the version; an invalid
// packet type makes mochi's encoder refuse it, so nothing is written, and
// DisconnectClient closes the connection as before.
func fixDisconnect(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if cl.Properties.ProtocolVersion < 5 {
		pk.FixedHeader.Type = packets.Reserved
	}
	return pk
}
