package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Acknowledgements from a client for the broker's own QoS 1/2 PUBLISHes.
// mochi acts on any PUBACK, PUBREC or PUBCOMP whose packet id is in the
// session's in-flight map, whatever it is waiting for there: a PUBACK ends
// a QoS 2 flow (the message counts as delivered without PUBREC), a PUBREC
// turns a QoS 1 message into a QoS 2 flow, a PUBCOMP ends a flow that never
// reached PUBREL, and an acknowledgement carrying the id of one of the
// client's own QoS 2 flows destroys that flow's state. A PUBCOMP for an id
// not in flight at all still grants Receive Maximum quota.
//
// The outbound hook checks each acknowledgement against the flow it names
// before mochi sees it:
//   - the expected one passes (PUBACK for QoS 1 [MQTT-4.3.2-3]; PUBREC for
//     QoS 2 [MQTT-4.3.3-3], also repeated; PUBCOMP after PUBREL
//     [MQTT-4.3.3-5]);
//   - one for an id the broker has no flow for is ignored, except a PUBREC,
//     which gets PUBREL 0x92 (MQTT 5) as mochi answers it;
//   - the wrong kind for a broker flow is a protocol error: MQTT 5 clients
//     get DISCONNECT 0x82, MQTT 3 connections are closed [MQTT-4.8.0-1@3.1.1]
//     [MQTT-4.13.1-1]. The message stays in the session and is sent again
//     on the next connection.

// OnPacketRead checks acknowledgements of broker flows.
func (h *outboundHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	t := pk.FixedHeader.Type
	if t == packets.Subscribe {
		return h.checkSubscribe(cl, pk)
	}
	if t != packets.Puback && t != packets.Pubrec && t != packets.Pubcomp {
		return pk, nil
	}
	p, ok := cl.State.Inflight.Get(pk.PacketID)
	ours := ok && brokerFlow(p)
	if !ours {
		if t == packets.Pubrec && !ok {
			return pk, nil // mochi answers PUBREL 0x92 [MQTT-4.3.3-4]
		}
		if t == packets.Pubrec {
			// The id of the client's own flow: answer as for an unknown id
			// without touching that flow.
			if err := cl.WritePacket(packets.Packet{
				FixedHeader: packets.FixedHeader{Type: packets.Pubrel, Qos: 1},
				PacketID:    pk.PacketID,
				ReasonCode:  packets.ErrPacketIdentifierNotFound.Code,
			}); err != nil {
				return pk, err
			}
		}
		return ignoredAck(), nil
	}
	switch {
	case t == packets.Puback && p.FixedHeader.Type == packets.Publish && p.FixedHeader.Qos == 1,
		t == packets.Pubrec && p.FixedHeader.Type == packets.Publish && p.FixedHeader.Qos == 2,
		t == packets.Pubrec && p.FixedHeader.Type == packets.Pubrel,
		t == packets.Pubcomp && p.FixedHeader.Type == packets.Pubrel:
		return pk, nil
	}
	h.core.b.log.Debug("acknowledgement does not match its flow; closing the connection", "client_id", cl.ID,
		"remote", cl.Net.Remote)
	return pk, h.protocolError(cl)
}

// checkSubscribe refuses No Local on a shared subscription as the protocol
// error it is [MQTT-3.8.3-4]: mochi answers it with SUBACK reason 0x82,
// which is not a SUBACK reason code [MQTT-3.9.3-2].
func (h *outboundHook) checkSubscribe(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	for _, f := range pk.Filters {
		if f.NoLocal && mqtt.IsSharedFilter(f.Filter) {
			return pk, h.protocolError(cl)
		}
	}
	return pk, nil
}

// protocolError ends the connection of a client that broke the protocol:
// DISCONNECT 0x82 for MQTT 5, a plain close for MQTT 3, which has no
// server DISCONNECT. The returned error makes mochi stop reading.
func (h *outboundHook) protocolError(cl *mqtt.Client) error {
	if cl.Properties.ProtocolVersion == 5 {
		_ = h.core.b.srv.DisconnectClient(cl, packets.ErrProtocolViolation)
	} else {
		cl.Stop(packets.ErrProtocolViolation)
	}
	return packets.ErrRejectPacket
}

// ignoredAck is a packet mochi processes as nothing: a PUBACK for packet id
// 0, which is never in flight.
func ignoredAck() packets.Packet {
	return packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}}
}
