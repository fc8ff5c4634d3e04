package integration_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
)

// disruptions are the ways a broker goes away and comes back.
var disruptions = []struct {
	name string
	run  func(t *testing.T, srv *brokertest.Server)
}{
	{"graceful-restart", func(t *testing.T, srv *brokertest.Server) { srv.Restart(t) }},
	{"crash", func(t *testing.T, srv *brokertest.Server) {
		srv.Crash(t)
		srv.Restart(t)
	}},
}

// TestRetainedMessagesSurviveRestartAndClearedOnesStayCleared publishes two
// retained messages and a third that is then cleared with an empty retained
// payload [MQTT-3.3.1-6]; after a graceful restart or a crash, a new
// subscriber gets exactly the two, flagged retained [MQTT-3.3.1-9], and
// their properties intact.
func TestRetainedMessagesSurviveRestartAndClearedOnesStayCleared(t *testing.T) {
	t.Parallel()
	for _, d := range disruptions {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			srv := brokertest.Start(t)
			needStore(t, srv)
			id := unique("ret")
			pub := startClient(t, srv.TCPAddr, client.WithClientID(id+"-pub"), client.WithCleanSession(true))
			ctx := ctxFor(t)
			for _, p := range []struct {
				topic, payload string
				qos            client.QOSLevel
			}{
				{"a", "A", client.QOSOne}, {"b", "B", client.QOSTwo}, {"c", "C", client.QOSOne}, {"c", "", client.QOSOne},
			} {
				if err := pub.Publish(ctx, "ret/"+id+"/"+p.topic, p.payload, p.qos, client.Retained(true), client.ContentType("text/plain")); err != nil {
					t.Fatal(err)
				}
			}
			pub.Stop()
			d.run(t, srv)

			in := newInbox()
			ct := make(chan string, 8)
			sub := startClient(t, srv.TCPAddr, client.WithClientID(id+"-sub"), client.WithCleanSession(true))
			if err := sub.Subscribe(ctx, "ret/"+id+"/#", func(c2 context.Context, ps client.PubSub, m *client.Message) {
				ct <- m.Properties.ContentType
				in.handler(c2, ps, m)
			}, client.QOSOne); err != nil {
				t.Fatal(err)
			}
			// mochi writes SUBACK before the retained messages. A second
			// SUBSCRIBE is processed after the first one's retained messages
			// were queued, and a fence published after its SUBACK comes
			// after all of them.
			if err := sub.Subscribe(ctx, "retfence/"+id, in.handler, client.QOSOne); err != nil {
				t.Fatal(err)
			}
			pub = startClient(t, srv.TCPAddr, client.WithClientID(id+"-pub2"), client.WithCleanSession(true))
			if err := pub.Publish(ctx, "retfence/"+id, "fence", client.QOSOne); err != nil {
				t.Fatal(err)
			}
			got := in.until(t, "fence")
			var names []string
			for _, m := range got {
				if !m.Retained {
					t.Errorf("%s %q arrived without the retained flag", m.Topic, m.Payload)
				}
				names = append(names, m.Topic[len("ret/"+id+"/"):]+"="+m.Payload)
				if c := <-ct; c != "text/plain" {
					t.Errorf("%s: content type %q lost", m.Topic, c)
				}
			}
			sort.Strings(names)
			if fmt.Sprint(names) != "[a=A b=B]" {
				t.Errorf("retained after %s: %v, want [a=A b=B]", d.name, names)
			}
		})
	}
}

// TestSharedSubscriptionSurvivesRestartAndDeliversEachMessageOnce: an MQTT
// 3.1.1 and an MQTT 5 member of $share/g/... with persistent sessions; after
// a graceful restart or a crash both come back without subscribing again,
// find their sessions, and 40 QoS 1 messages are each delivered to exactly
// one member, both members getting some.
func TestSharedSubscriptionSurvivesRestartAndDeliversEachMessageOnce(t *testing.T) {
	t.Parallel()
	for _, d := range disruptions {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			srv := brokertest.Start(t)
			needStore(t, srv)
			id := unique("shared")
			group, fence := "$share/g/sh/"+id, "shf/"+id
			m3 := dialV3(t, srv.TCPAddr, id+"-m3", false, newInbox())
			m3.subscribe(t, group, 1)
			m3.subscribe(t, fence, 1)
			m3.close()
			m5 := dialV5(t, srv.TCPAddr, id+"-m5", false, 5*time.Minute, newInbox())
			m5.subscribe(t, group, 1)
			m5.subscribe(t, fence, 1)
			m5.close()

			d.run(t, srv)

			in3, in5 := newInbox(), newInbox()
			m3 = dialV3(t, srv.TCPAddr, id+"-m3", false, in3)
			m5 = dialV5(t, srv.TCPAddr, id+"-m5", false, 5*time.Minute, in5)
			if !m3.present() || !m5.present() {
				t.Fatalf("sessions after %s: 3.1.1 present=%v, 5 present=%v", d.name, m3.present(), m5.present())
			}
			pub := dialV5(t, srv.TCPAddr, id+"-pub", true, 0, nil)
			const n = 40
			for i := range n {
				pub.publish(t, "sh/"+id, 1, false, fmt.Sprintf("m%02d", i))
			}
			pub.publish(t, fence, 1, false, "fence")
			count := map[string]int{}
			got3, got5 := in3.until(t, "fence"), in5.until(t, "fence")
			for _, m := range append(got3, got5...) {
				count[m.Payload]++
			}
			for i := range n {
				if c := count[fmt.Sprintf("m%02d", i)]; c != 1 {
					t.Errorf("message %d delivered %d times to the group, want 1", i, c)
				}
			}
			if len(got3) == 0 || len(got5) == 0 {
				t.Errorf("one member got everything: 3.1.1 %d, 5 %d", len(got3), len(got5))
			}
		})
	}
}
