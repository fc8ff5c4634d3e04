package hooks

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// resolveTopicAlias fills in the topic name of an MQTT 5 PUBLISH that carries
// only a topic alias. mochi resolves aliases after its ACL check, so without
// this the ACL would see an empty topic and refuse every alias-only publish.
// An alias the client never set (or set on a refused publish) stays empty
// and is refused. [MQTT-3.3.2-12]
func resolveTopicAlias(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type != packets.Publish || pk.TopicName != "" ||
		!pk.Properties.TopicAliasFlag || pk.Properties.TopicAlias == 0 || cl.State.TopicAliases.Inbound == nil {
		return pk
	}
	// Set with an empty topic returns the existing mapping without changing it.
	pk.TopicName = cl.State.TopicAliases.Inbound.Set(pk.Properties.TopicAlias, "")
	return pk
}

// OnPacketRead implements mqtt.Hook: see resolveTopicAlias.
func (h *TokenAuth) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	return resolveTopicAlias(cl, pk), nil
}

// OnPacketRead implements mqtt.Hook: see resolveTopicAlias.
func (h *UsersAuth) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	return resolveTopicAlias(cl, pk), nil
}
