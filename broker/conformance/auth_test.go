package conformance_test

import (
	"testing"
	"time"

	"github.com/courier-mqtt/courier/auth"
	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	mt "github.com/courier-mqtt/courier/internal/mqtttest"
)

// lcTokens is a broker with broker-token authentication and a way to sign
// tokens for it.
type lcTokens struct {
	srv *brokertest.Server
	ks  *auth.KeySet
}

func lcTokenBroker(t *testing.T) *lcTokens {
	t.Helper()
	key, err := auth.GenerateEd25519Key("conformance")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := auth.NewKeySet("conformance", key)
	if err != nil {
		t.Fatal(err)
	}
	v := auth.NewVerifier(ks.Public(), auth.VerifierOptions{})
	return &lcTokens{srv: lcStart(t, brokertest.WithOptions(broker.WithTokenVerifier(v))), ks: ks}
}

// token signs a token for client id with the grants.
func (b *lcTokens) token(t *testing.T, id string, g auth.Grants) string {
	t.Helper()
	tok, err := b.ks.Sign(&auth.Claims{Subject: "user-" + id, ClientID: id, ExpiresAt: time.Now().Add(time.Hour), Perms: g})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// connect connects id with its token as the password.
func (b *lcTokens) connect(t *testing.T, v byte, id string, g auth.Grants) *mt.Conn {
	t.Helper()
	c := mt.Dial(t, b.srv.TCPAddr, v)
	c.MustConnect(mt.Connect{ClientID: id, Clean: true, Keepalive: 30, Password: mt.Ptr(b.token(t, id, g)), Username: mt.Ptr("user-" + id)})
	return c
}

// TestEnhancedAuth covers 4.12 Enhanced authentication and 3.15 AUTH on a
// broker that supports no Authentication Method (anonymous access), and on
// one with broker tokens, whose method is "courier-token" (5.0).
func TestEnhancedAuth(t *testing.T) {
	lcRun(t, []lcCase{
		{
			name: "an unsupported Authentication Method is refused with 0x8C",
			rule: "[MQTT-4.12.0-1] [MQTT-3.2.2-7] [MQTT-3.14.0-1] [MQTT-4.13.2-1]",
			run: func(t *testing.T, srv *brokertest.Server) {
				c := mt.Dial(t, srv.TCPAddr, 5)
				ca := c.Connect(mt.Connect{ClientID: "scram", Clean: true, Keepalive: 30, Props: [][]byte{
					mt.String(mt.PropAuthMethod, "SCRAM-SHA-1"), mt.Binary(mt.PropAuthData, []byte("client-first")),
				}})
				if ca.Reason != 0x8C {
					t.Fatalf("CONNACK %#x, want 0x8C", ca.Reason)
				}
				if r := c.ExpectClosed(); r != -1 {
					t.Fatalf("DISCONNECT %#x after a refusing CONNACK", r)
				}
			},
		},
		{
			name: "an AUTH packet without enhanced authentication is a protocol error",
			rule: "[MQTT-4.12.0-7] [MQTT-4.13.1-1] [MQTT-4.13.2-1] [MQTT-3.14.4-2] [MQTT-4.12.0-6]",
			run: func(t *testing.T, srv *brokertest.Server) {
				c := lcDial(t, srv, 5, "auth")
				c.Send(mt.Frame(0xF0, []byte{0x19}, mt.Props(mt.String(mt.PropAuthMethod, "SCRAM-SHA-1"))))
				got := c.Closed(mt.Timeout)
				if len(got) != 1 || got[0].Type() != mt.DISCONNECT {
					t.Fatalf("got %v, want DISCONNECT 0x82 and the close (and never AUTH)", got)
				}
				if r, _, _ := got[0].Disconnect(); r != 0x82 {
					t.Fatalf("DISCONNECT %#x, want 0x82", r)
				}
			},
		},
	})

	t.Run("broker tokens", func(t *testing.T) {
		t.Parallel()
		b := lcTokenBroker(t)
		ok := mt.Dial(t, b.srv.TCPAddr, 5)
		ca := ok.MustConnect(mt.Connect{ClientID: "m", Clean: true, Keepalive: 30, Props: [][]byte{
			mt.String(mt.PropAuthMethod, "courier-token"), mt.Binary(mt.PropAuthData, []byte(b.token(t, "m", auth.Grants{}))),
		}})
		// [MQTT-4.12.0-5]: a successful CONNACK repeats the method.
		if m, _ := ca.Props.Get(mt.PropAuthMethod); m.Str != "courier-token" {
			t.Fatalf("CONNACK Authentication Method %q", m.Str)
		}
		other := mt.Dial(t, b.srv.TCPAddr, 5)
		// [MQTT-4.12.0-1]
		if ca := other.Connect(mt.Connect{ClientID: "o", Clean: true, Keepalive: 30, Props: [][]byte{mt.String(mt.PropAuthMethod, "SCRAM-SHA-1")}}); ca.Reason != 0x8C {
			t.Fatalf("CONNACK %#x for an unsupported method, want 0x8C", ca.Reason)
		}
		other.ExpectClosed()

		// [MQTT-3.1.3-8]: a client id the token does not name is refused
		// (0x87, not authorized, rather than 0x85) and the connection closed.
		wrong := mt.Dial(t, b.srv.TCPAddr, 5)
		if ca := wrong.Connect(mt.Connect{ClientID: "not-m", Clean: true, Keepalive: 30, Password: mt.Ptr(b.token(t, "m", auth.Grants{}))}); ca.Reason < 0x80 {
			t.Fatalf("CONNACK %#x for a client id the token does not name", ca.Reason)
		}
		wrong.ExpectClosed()

		// [MQTT-4.12.0-4] [MQTT-3.1.4-2] [MQTT-4.13.2-1]: a failed check
		// (here the method's data, or the password) refuses and closes.
		for _, pk := range []mt.Connect{
			{ClientID: "bad", Clean: true, Keepalive: 30, Props: [][]byte{mt.String(mt.PropAuthMethod, "courier-token"), mt.Binary(mt.PropAuthData, []byte("not a token"))}},
			{ClientID: "bad", Clean: true, Keepalive: 30, Password: mt.Ptr("not a token")},
		} {
			bad := mt.Dial(t, b.srv.TCPAddr, 5)
			if ca := bad.Connect(pk); ca.Reason < 0x80 {
				t.Fatalf("CONNACK %#x for a bad token", ca.Reason)
			}
			if r := bad.ExpectClosed(); r != -1 {
				t.Fatalf("DISCONNECT %#x after a refusing CONNACK", r)
			}
		}

		// Re-authentication: [MQTT-3.15.2-1] [MQTT-4.12.0-5] a success is
		// AUTH 0x00 naming the method; [MQTT-4.12.1-2] a failure closes.
		authPk := func(data string) []byte {
			return mt.Frame(0xF0, []byte{0x19}, mt.Props(mt.String(mt.PropAuthMethod, "courier-token"), mt.Binary(mt.PropAuthData, []byte(data))))
		}
		ok.Send(authPk(b.token(t, "m", auth.Grants{})))
		r, props, err := ok.Expect(mt.AUTH).Disconnect()
		if m, _ := props.Get(mt.PropAuthMethod); err != nil || r != 0x00 || m.Str != "courier-token" {
			t.Fatalf("AUTH %#x %+v %v, want 0x00 with method courier-token", r, props, err)
		}
		// [MQTT-3.15.2-2] [MQTT-3.15.2-3]: an AUTH stays within the
		// client's Maximum Packet Size (20 bytes carry reason and method;
		// a Reason String or User Properties of more than 20 would not fit
		// in 40; the CONNACK itself needs about 40).
		small := mt.Dial(t, b.srv.TCPAddr, 5)
		small.MustConnect(mt.Connect{ClientID: "s", Clean: true, Keepalive: 30, Props: [][]byte{
			mt.String(mt.PropAuthMethod, "courier-token"), mt.Binary(mt.PropAuthData, []byte(b.token(t, "s", auth.Grants{}))),
			mt.Int(mt.PropMaximumPacketSize, 40),
		}})
		small.Send(authPk(b.token(t, "s", auth.Grants{})))
		if p := small.Expect(mt.AUTH); len(p.Bytes()) > 40 {
			t.Fatalf("AUTH of %d bytes for a maximum of 40: %s", len(p.Bytes()), p)
		}
		ok.Send(authPk("not a token"))
		if r := ok.ExpectClosed(); r < 0x80 {
			t.Fatalf("failed re-authentication: DISCONNECT %#x, want a refusal and the close", r)
		}
	})
}
