package wire

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by operations on a Client whose connection has ended.
	ErrClosed = errors.New("wire: connection closed")
	// ErrProtocol is returned (wrapped) when the server sends a malformed or unexpected packet.
	ErrProtocol = errors.New("wire: protocol error")
	// ErrNotAuthorized matches a CONNACK refusal for bad credentials or no authorization
	// (3.1.1 return codes 4 and 5, MQTT 5 reason codes 0x86, 0x87 and 0x8C).
	ErrNotAuthorized = errors.New("wire: not authorized")
	// ErrRefused matches any CONNACK refusal.
	ErrRefused = errors.New("wire: connection refused")
	// ErrSubscribeRefused is returned when a SUBACK carries a failure reason code.
	ErrSubscribeRefused = errors.New("wire: subscription refused")
	// ErrServerDisconnect is returned (wrapped) when an MQTT 5 server sends DISCONNECT.
	ErrServerDisconnect = errors.New("wire: server sent disconnect")
	// ErrBadBrokerURL is returned by NewDialer for an address it cannot use.
	ErrBadBrokerURL = errors.New("wire: bad broker address")
)

// ConnackError is a refused CONNACK. errors.Is(err, ErrRefused) is always true,
// errors.Is(err, ErrNotAuthorized) when the code means bad credentials or not authorized.
type ConnackError struct {
	Version byte // V311 or V5
	Code    byte // 3.1.1 return code or MQTT 5 reason code
}

func (e *ConnackError) Error() string {
	return fmt.Sprintf("wire: connection refused: code 0x%02x", e.Code)
}

// Is reports whether target is ErrRefused, or ErrNotAuthorized for an auth code.
func (e *ConnackError) Is(target error) bool {
	switch target {
	case ErrRefused:
		return true
	case ErrNotAuthorized:
		return e.Auth()
	}
	return false
}

// Auth reports whether the code means bad credentials or not authorized.
func (e *ConnackError) Auth() bool {
	if e.Version == V5 {
		return e.Code == 0x86 || e.Code == 0x87 || e.Code == 0x8C
	}
	return e.Code == 4 || e.Code == 5
}
