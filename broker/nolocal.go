package broker

import (
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// No Local with overlapping subscriptions: mochi merges all of a client's
// subscriptions matching a topic into one, with No Local set if any of them
// has it, so a client's own message matching one subscription with No Local
// and one without is not delivered at all. The message belongs in the
// session through the subscription without No Local [MQTT-4.5.0-1]; No
// Local only withholds it on its own subscription [MQTT-3.8.3-3].
//
// mochi (and the store) compare the message's origin with the subscriber:
// for such a message the origin is cleared, so the merged subscription
// delivers it once. Only clients that ever subscribed with No Local are
// looked at, so other publishes cost one map lookup.

// OnSubscribe notes clients that use No Local or subscription identifiers.
func (h *outboundHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	h.noteSubscriptionIDs(cl, pk)
	for _, f := range pk.Filters {
		if f.NoLocal {
			h.noLocal.Store(cl.ID, struct{}{})
			break
		}
	}
	return pk
}

// OnPublish clears the origin of a message its publisher also receives
// through a subscription without No Local, and records the published
// Message Expiry Interval when a maximum age is configured (expiryfix.go).
func (h *outboundHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if h.maxAge > 0 {
		pk = markOwnExpiry(pk)
	}
	if _, ok := h.noLocal.Load(cl.ID); ok && pk.Origin == cl.ID && deliversToSelf(cl, pk.TopicName) {
		pk.Origin = ""
	}
	return pk, nil
}

// deliversToSelf reports whether one of cl's non-shared subscriptions
// without No Local matches topic.
func deliversToSelf(cl *mqtt.Client, topic string) bool {
	for filter, sub := range cl.State.Subscriptions.GetAll() {
		if !sub.NoLocal && !mqtt.IsSharedFilter(filter) && topicMatches(filter, topic) {
			return true
		}
	}
	return false
}

// topicMatches reports whether the topic filter matches the topic name
// (4.7): + matches one level, # the rest including the parent level, and
// filters starting with a wildcard do not match topics starting with $.
func topicMatches(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		if f == "#" {
			return true
		}
		t, trest, tmore := strings.Cut(topic, "/")
		if f != "+" && f != t {
			return false
		}
		switch {
		case !fmore && !tmore:
			return true
		case !tmore:
			return frest == "#" // "a/#" matches "a"
		case !fmore:
			return false
		}
		filter, topic = frest, trest
	}
}
