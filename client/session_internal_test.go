package client

import (
	"bytes"
	"context"
	"testing"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho/session"
	"github.com/eclipse/paho.golang/paho/session/state"
)

// pubrecAfterConnectionLoss drives a session through a QoS 2 publish whose
// PUBREC is handled after the connection was lost: the order the race in
// paho.golang's state.go produces when a connection drops while PUBRECs
// arrive. It returns the recovered panic, if any.
func pubrecAfterConnectionLoss(t *testing.T, s session.SessionManager) (recovered any) {
	t.Helper()
	var wire bytes.Buffer
	cp := &packets.Connect{ProtocolVersion: 5, ClientID: "c"}
	ca := &packets.Connack{Properties: &packets.Properties{}}
	if err := s.ConAckReceived(&wire, cp, ca); err != nil {
		t.Fatalf("ConAckReceived: %v", err)
	}
	pub := &packets.Publish{QoS: 2, Topic: "t", Payload: []byte("x"), Properties: &packets.Properties{}}
	resp := make(chan packets.ControlPacket, 1)
	if err := s.AddToSession(context.Background(), pub, resp); err != nil {
		t.Fatalf("AddToSession: %v", err)
	}
	if err := s.ConnectionLost(nil); err != nil {
		t.Fatalf("ConnectionLost: %v", err)
	}
	pubrec := &packets.ControlPacket{
		FixedHeader: packets.FixedHeader{Type: packets.PUBREC},
		Content:     &packets.Pubrec{PacketID: pub.PacketID, Properties: &packets.Properties{}},
	}
	defer func() { recovered = recover() }()
	_ = s.PacketReceived(pubrec, make(chan *packets.Publish, 1))
	return nil
}

// TestPahoStatePanicsOnPUBRECAfterConnectionLoss records the upstream
// defect the guard exists for: if this starts failing, paho.golang fixed it
// and guardedSession can go.
func TestPahoStatePanicsOnPUBRECAfterConnectionLoss(t *testing.T) {
	if r := pubrecAfterConnectionLoss(t, state.NewInMemory()); r == nil {
		t.Fatal("paho.golang's session state no longer panics on a PUBREC after connection loss: drop guardedSession")
	}
}

func TestGuardedSessionDropsPUBRECAfterConnectionLoss(t *testing.T) {
	if r := pubrecAfterConnectionLoss(t, guardSession(state.NewInMemory())); r != nil {
		t.Fatalf("guarded session panicked: %v", r)
	}
}

// TestGuardedSessionPassesPUBRECWhileConnected checks the guard does not
// swallow PUBRECs on a live connection: the PUBREL goes out.
func TestGuardedSessionPassesPUBRECWhileConnected(t *testing.T) {
	s := guardSession(state.NewInMemory())
	var wire bytes.Buffer
	if err := s.ConAckReceived(&wire, &packets.Connect{ProtocolVersion: 5, ClientID: "c"}, &packets.Connack{Properties: &packets.Properties{}}); err != nil {
		t.Fatal(err)
	}
	pub := &packets.Publish{QoS: 2, Topic: "t", Payload: []byte("x"), Properties: &packets.Properties{}}
	if err := s.AddToSession(context.Background(), pub, make(chan packets.ControlPacket, 1)); err != nil {
		t.Fatal(err)
	}
	wire.Reset()
	pubrec := &packets.ControlPacket{
		FixedHeader: packets.FixedHeader{Type: packets.PUBREC},
		Content:     &packets.Pubrec{PacketID: pub.PacketID, Properties: &packets.Properties{}},
	}
	if err := s.PacketReceived(pubrec, make(chan *packets.Publish, 1)); err != nil {
		t.Fatal(err)
	}
	if wire.Len() == 0 || wire.Bytes()[0] != 0x62 {
		t.Fatalf("want a PUBREL (0x62) on the wire, got % x", wire.Bytes())
	}
}
