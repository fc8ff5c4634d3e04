package client

import (
	"errors"
	"fmt"
)

var (
	// ErrNoAddress is returned by NewClient when no broker address, resolver or
	// token API is configured.
	ErrNoAddress = errors.New("client: no broker address")
	// ErrConflictingOptions is returned by NewClient when two options contradict
	// each other (for example WithCredentialFetcher beside WithTokenAPI).
	ErrConflictingOptions = errors.New("client: conflicting options")
	// ErrInvalidOption is returned by NewClient when an option value is out of range.
	ErrInvalidOption = errors.New("client: invalid option")
	// ErrNotStarted is returned by operations that need a running client before
	// Start was called or after Stop.
	ErrNotStarted = errors.New("client: not started")
	// ErrAlreadyStarted is returned by Start when the client is already running.
	ErrAlreadyStarted = errors.New("client: already started")
	// ErrNotConnected is returned when an operation needs the connection and it
	// is down (and the message could not be buffered offline).
	ErrNotConnected = errors.New("client: not connected")
	// ErrInFlight is returned (wrapped) by Publish when a QoS 1/2 message was
	// handed to the session but its acknowledgement did not arrive in time or the
	// connection dropped. The message stays in the session and is resent after a
	// reconnect: do not publish it again.
	ErrInFlight = errors.New("client: publish in flight, will be resent")
	// ErrOfflineBufferFull is returned by Publish when the client is offline, the
	// offline buffer is full and the policy is DropNewest.
	ErrOfflineBufferFull = errors.New("client: offline buffer full")
	// ErrUnsupportedType is returned by an encoder or decoder in a chain that does
	// not handle the given type; the chain then tries the next one.
	ErrUnsupportedType = errors.New("client: unsupported type for codec")
	// ErrTokenAPI is returned (wrapped) when the token API could not supply
	// credentials.
	ErrTokenAPI = errors.New("client: token api")
	// ErrTokenRejected is returned (wrapped) when the token API answered with a
	// 4xx status: retrying with the same request will not help.
	ErrTokenRejected = errors.New("client: token api rejected the request")
	// ErrNoHandler is carried by a MessageReceiveError event when a received
	// message matched no subscription handler and no stream.
	ErrNoHandler = errors.New("client: no handler or stream for message")
	// ErrAckTimeout is returned (wrapped) when the watchdog declared the
	// connection dead because a reply did not arrive within the ack timeout.
	ErrAckTimeout = errors.New("client: no reply within ack timeout")

	// Sentinels for MQTT 5 reason codes; a *ReasonCodeError matches them with errors.Is.

	// ErrUnspecified is reason code 0x80.
	ErrUnspecified = errors.New("client: unspecified error")
	// ErrMalformedPacket is reason code 0x81.
	ErrMalformedPacket = errors.New("client: malformed packet")
	// ErrProtocolError is reason code 0x82.
	ErrProtocolError = errors.New("client: protocol error")
	// ErrImplementationSpecific is reason code 0x83.
	ErrImplementationSpecific = errors.New("client: implementation specific error")
	// ErrClientIDNotValid is reason code 0x85.
	ErrClientIDNotValid = errors.New("client: client identifier not valid")
	// ErrBadCredentials is reason code 0x86 (bad user name or password).
	ErrBadCredentials = errors.New("client: bad user name or password")
	// ErrNotAuthorized is reason code 0x87.
	ErrNotAuthorized = errors.New("client: not authorized")
	// ErrServerUnavailable is reason code 0x88.
	ErrServerUnavailable = errors.New("client: server unavailable")
	// ErrServerBusy is reason code 0x89.
	ErrServerBusy = errors.New("client: server busy")
	// ErrBanned is reason code 0x8A.
	ErrBanned = errors.New("client: banned")
	// ErrTopicFilterInvalid is reason code 0x8F.
	ErrTopicFilterInvalid = errors.New("client: topic filter invalid")
	// ErrTopicNameInvalid is reason code 0x90.
	ErrTopicNameInvalid = errors.New("client: topic name invalid")
	// ErrPacketIDInUse is reason code 0x91.
	ErrPacketIDInUse = errors.New("client: packet identifier in use")
	// ErrQuotaExceeded is reason code 0x97.
	ErrQuotaExceeded = errors.New("client: quota exceeded")
	// ErrPayloadFormatInvalid is reason code 0x99.
	ErrPayloadFormatInvalid = errors.New("client: payload format invalid")
	// ErrSharedSubscriptionsNotSupported is reason code 0x9E.
	ErrSharedSubscriptionsNotSupported = errors.New("client: shared subscriptions not supported")
	// ErrWildcardSubscriptionsNotSupported is reason code 0xA2.
	ErrWildcardSubscriptionsNotSupported = errors.New("client: wildcard subscriptions not supported")
)

var reasonSentinels = map[byte]error{
	0x80: ErrUnspecified,
	0x81: ErrMalformedPacket,
	0x82: ErrProtocolError,
	0x83: ErrImplementationSpecific,
	0x85: ErrClientIDNotValid,
	0x86: ErrBadCredentials,
	0x87: ErrNotAuthorized,
	0x88: ErrServerUnavailable,
	0x89: ErrServerBusy,
	0x8A: ErrBanned,
	0x8F: ErrTopicFilterInvalid,
	0x90: ErrTopicNameInvalid,
	0x91: ErrPacketIDInUse,
	0x97: ErrQuotaExceeded,
	0x99: ErrPayloadFormatInvalid,
	0x9E: ErrSharedSubscriptionsNotSupported,
	0xA2: ErrWildcardSubscriptionsNotSupported,
}

// ReasonCodeError is an MQTT 5 reason code >= 0x80 sent by the broker in reply
// to an operation (CONNACK, PUBACK, PUBREC, SUBACK, UNSUBACK). It matches the
// package's sentinels: errors.Is(err, client.ErrNotAuthorized).
type ReasonCodeError struct {
	Op     string // "connect", "publish", "subscribe" or "unsubscribe"
	Topic  string // topic or filter, if any
	Code   byte   // the reason code
	Reason string // the broker's reason string, if any
}

func (e *ReasonCodeError) Error() string {
	msg := fmt.Sprintf("client: %s", e.Op)
	if e.Topic != "" {
		msg += " " + e.Topic
	}
	msg += fmt.Sprintf(": reason code 0x%02X", e.Code)
	if s, ok := reasonSentinels[e.Code]; ok {
		msg += " (" + s.Error()[len("client: "):] + ")"
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// Is reports whether target is the sentinel for this reason code.
func (e *ReasonCodeError) Is(target error) bool {
	s, ok := reasonSentinels[e.Code]
	return ok && s == target
}

// ReasonCode returns the MQTT reason code carried by err, if any.
func ReasonCode(err error) (byte, bool) {
	var rc *ReasonCodeError
	if errors.As(err, &rc) {
		return rc.Code, true
	}
	return 0, false
}

// TokenHTTPError is the token API's non-2xx answer. A 4xx also matches
// ErrTokenRejected; every status matches ErrTokenAPI.
type TokenHTTPError struct {
	StatusCode int
}

func (e *TokenHTTPError) Error() string {
	return fmt.Sprintf("client: token api answered status %d", e.StatusCode)
}

// Is matches ErrTokenAPI always and ErrTokenRejected for 4xx statuses.
func (e *TokenHTTPError) Is(target error) bool {
	if target == ErrTokenAPI {
		return true
	}
	return target == ErrTokenRejected && e.StatusCode >= 400 && e.StatusCode < 500
}
