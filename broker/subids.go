package broker

import (
	"slices"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Subscription identifiers on retained messages: mochi sends the retained
// messages a new subscription matches without the subscription's
// identifier (it only copies identifiers it merged from the topic index),
// although they are published as a result of that subscription
// [MQTT-3.3.4-3]. The outbound hook adds the identifiers of the client's
// matching subscriptions to a retained PUBLISH that has none, for clients
// that ever subscribed with an identifier.

// noteSubscriptionIDs records a client that subscribes with an identifier.
func (h *outboundHook) noteSubscriptionIDs(cl *mqtt.Client, pk packets.Packet) {
	for _, f := range pk.Filters {
		if f.Identifier > 0 {
			h.subIDs.Store(cl.ID, struct{}{})
			return
		}
	}
}

// withSubscriptionIDs adds the identifiers to a retained PUBLISH.
func (h *outboundHook) withSubscriptionIDs(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if !pk.FixedHeader.Retain || len(pk.Properties.SubscriptionIdentifier) > 0 || cl.Properties.ProtocolVersion != 5 {
		return pk
	}
	if _, ok := h.subIDs.Load(cl.ID); !ok {
		return pk
	}
	var ids []int
	for filter, sub := range cl.State.Subscriptions.GetAll() {
		if sub.Identifier > 0 && !mqtt.IsSharedFilter(filter) && topicMatches(filter, pk.TopicName) {
			ids = append(ids, sub.Identifier)
		}
	}
	slices.Sort(ids)
	pk.Properties.SubscriptionIdentifier = ids
	return pk
}

// Retained messages on topics starting with $: mochi's retained scan for a
// filter starting with a wildcard (# or +/...) skips only $SYS, so a new
// subscription to "#" is sent every other retained $-topic, which such a
// filter must never match [MQTT-4.7.2-1]. mochi's live routing gets this
// right. The outbound hook drops a retained $-topic PUBLISH that none of
// the client's subscriptions matches.
func misrouted(cl *mqtt.Client, pk packets.Packet) bool {
	if !pk.FixedHeader.Retain || !strings.HasPrefix(pk.TopicName, "$") {
		return false
	}
	for filter := range cl.State.Subscriptions.GetAll() {
		if !mqtt.IsSharedFilter(filter) && topicMatches(filter, pk.TopicName) {
			return false
		}
	}
	return true
}
