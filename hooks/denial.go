package hooks

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Operations reported in a Denial.
const (
	OpConnect   = "connect"   // CONNECT refused (CONNACK carries Reason)
	OpPublish   = "publish"   // PUBLISH refused by the ACL
	OpSubscribe = "subscribe" // SUBSCRIBE filter refused by the ACL
	OpRead      = "read"      // a message not delivered, or a SUBSCRIBE of a wildcard-free filter refused
	OpReauth    = "reauth"    // AUTH re-authentication refused (DISCONNECT carries Reason)
	OpExpired   = "expired"   // token expired while connected (DISCONNECT carries Reason)
)

// Denial describes one refusal, for events and metrics. It never carries a
// token, password or payload.
type Denial struct {
	Op       string
	ClientID string
	Identity string // the authenticated or claimed identity, if known
	Remote   string
	Topic    string // topic or filter for publish/subscribe/read
	Reason   byte   // the MQTT reason code sent on the wire, 0 if none
	Err      error  // the cause (an auth.Err... sentinel where one applies)
}

// OnDeniedFunc receives denials. It runs synchronously on the client's
// goroutine (for OpRead, possibly the publisher's): it must be cheap and must not
// block.
type OnDeniedFunc func(Denial)

// MQTT 3.1.1 CONNACK return codes (3.2.2.3): mochi maps 0x86 to 5; the
// specification says 4 for bad user name or password.
const (
	v3BadUsernameOrPassword = 0x04
	v3NotAuthorized         = 0x05
)

// refuseConnect writes a CONNACK with code (mapped to the 3.1.1 return code
// for older clients) and returns code as the error that makes mochi close the
// connection. It is called from OnConnect, before mochi would send its own
// CONNACK 0x86. [MQTT-3.2.2-6] [MQTT-3.2.2-7]
func refuseConnect(cl *mqtt.Client, code packets.Code) error {
	ack := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connack},
		ReasonCode:  code.Code,
	}
	if cl.Properties.ProtocolVersion < 5 {
		switch code {
		case packets.ErrBadUsernameOrPassword:
			ack.ReasonCode = v3BadUsernameOrPassword
		default:
			ack.ReasonCode = v3NotAuthorized
		}
	} else {
		ack.Properties.ReasonString = code.Reason // WritePacket drops it if the client asked for no problem info
	}
	_ = cl.WritePacket(ack) // the connection is closed next either way
	return code
}

// disconnect sends a v5 DISCONNECT with code and closes the connection; a
// 3.1.1 client is just closed (the server has no DISCONNECT there).
func disconnect(cl *mqtt.Client, code packets.Code) {
	if cl.Properties.ProtocolVersion == 5 {
		_ = cl.WritePacket(packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Disconnect},
			ReasonCode:  code.Code,
			Properties:  packets.Properties{ReasonString: code.Reason},
		})
	}
	cl.Stop(code)
}
