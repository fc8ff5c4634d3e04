package client_test

import (
	"testing"

	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
)

func TestPublishSubscribeRoundTrip(t *testing.T) {
	srv := brokertest.Start(t)
	sub := startClient(t, srv, client.WithClientID("sub"))
	pub := startClient(t, srv, client.WithClientID("pub"))
	col := newCollector()
	ctx := ctxT(t)
	if err := sub.Subscribe(ctx, "orders/+", col.handle, client.QOSOne); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	for _, q := range []client.QOSLevel{client.QOSZero, client.QOSOne, client.QOSTwo} {
		err := pub.Publish(ctx, "orders/42", map[string]int{"qos": int(q)}, q,
			client.ContentType("application/json"), client.UserProperty("k", "v"),
			client.ResponseTopic("replies/1"), client.CorrelationData([]byte("c1")))
		if err != nil {
			t.Fatalf("Publish qos %d: %v", q, err)
		}
		m := recv(t, col.ch)
		var got map[string]int
		if err := m.DecodePayload(&got); err != nil {
			t.Fatal(err)
		}
		// Delivery QoS is the lower of publish and subscription QoS.
		if got["qos"] != int(q) || m.Topic != "orders/42" || m.QoS != min(q, client.QOSOne) {
			t.Fatalf("got %v topic %s qos %d", got, m.Topic, m.QoS)
		}
		p := m.Properties
		if p.ContentType != "application/json" || p.ResponseTopic != "replies/1" || string(p.CorrelationData) != "c1" {
			t.Fatalf("properties %+v", p)
		}
		if v := p.User["k"]; len(v) != 1 || v[0] != "v" {
			t.Fatalf("user properties %v (mochi strips them without RequestProblemInfo)", p.User)
		}
	}
	if err := sub.Unsubscribe(ctx, "orders/+"); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
}
