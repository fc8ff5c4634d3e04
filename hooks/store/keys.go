package store

import (
	"encoding/binary"
	"fmt"
)

// Key layout. Every key starts with one kind byte. A client id is always
// written as uvarint(len) followed by its bytes, so no client id can make
// one key a prefix of, or equal to, another client's key. A component that
// is last in a key (a topic filter, a topic) needs no length.
//
//	schema:      'M' "schema"
//	session:     'S' uvarint(len(cid)) cid
//	subscription 'B' uvarint(len(cid)) cid filter
//	outbound:    'O' uvarint(len(cid)) cid seq(8, big endian)
//	inbound QoS2 'Q' uvarint(len(cid)) cid packetID(2, big endian)
//	retained:    'T' topic
//	quarantine:  'X' original key
const (
	kindMeta       byte = 'M'
	kindSession    byte = 'S'
	kindSub        byte = 'B'
	kindOutbound   byte = 'O'
	kindInbound    byte = 'Q'
	kindRetained   byte = 'T'
	kindQuarantine byte = 'X'
)

var schemaKey = []byte("Mschema")

// clientPrefix returns kind + uvarint(len(cid)) + cid.
func clientPrefix(kind byte, cid string) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(cid)+8)
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(len(cid)))
	return append(b, cid...)
}

func sessionKey(cid string) []byte { return clientPrefix(kindSession, cid) }

func subKey(cid, filter string) []byte {
	return append(clientPrefix(kindSub, cid), filter...)
}

func outboundKey(cid string, seq uint64) []byte {
	return appendOutboundKey(make([]byte, 0, outboundKeyLen(cid)), cid, seq)
}

// outboundKeyLen is the length of an outbound key of cid.
func outboundKeyLen(cid string) int { return 1 + uvarintLen(uint64(len(cid))) + len(cid) + 8 }

// uvarintLen is the length of x encoded as a uvarint.
func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

func appendOutboundKey(b []byte, cid string, seq uint64) []byte {
	b = append(b, kindOutbound)
	b = binary.AppendUvarint(b, uint64(len(cid)))
	b = append(b, cid...)
	return binary.BigEndian.AppendUint64(b, seq)
}

func inboundKey(cid string, pid uint16) []byte {
	return binary.BigEndian.AppendUint16(clientPrefix(kindInbound, cid), pid)
}

func retainedKey(topic string) []byte {
	return append([]byte{kindRetained}, topic...)
}

func quarantineKey(key []byte) []byte {
	return append([]byte{kindQuarantine}, key...)
}

// parsedKey is a decoded key.
type parsedKey struct {
	kind   byte
	client string
	rest   string // filter or topic
	seq    uint64
	pid    uint16
}

// parseKey decodes a key built by the functions above.
func parseKey(k []byte) (parsedKey, error) {
	if len(k) == 0 {
		return parsedKey{}, fmt.Errorf("%w: empty key", ErrCorrupt)
	}
	p := parsedKey{kind: k[0]}
	switch p.kind {
	case kindRetained:
		p.rest = string(k[1:])
		return p, nil
	case kindMeta, kindQuarantine:
		p.rest = string(k[1:])
		return p, nil
	case kindSession, kindSub, kindOutbound, kindInbound:
	default:
		return p, fmt.Errorf("%w: unknown key kind %q", ErrCorrupt, p.kind)
	}
	n, w := binary.Uvarint(k[1:])
	if w <= 0 || n > uint64(len(k)-1-w) {
		return p, fmt.Errorf("%w: bad client id length", ErrCorrupt)
	}
	start := 1 + w
	end := start + int(n)
	p.client = string(k[start:end])
	tail := k[end:]
	switch p.kind {
	case kindSession:
		if len(tail) != 0 {
			return p, fmt.Errorf("%w: session key has a tail", ErrCorrupt)
		}
	case kindSub:
		p.rest = string(tail)
	case kindOutbound:
		if len(tail) != 8 {
			return p, fmt.Errorf("%w: outbound key tail %d bytes", ErrCorrupt, len(tail))
		}
		p.seq = binary.BigEndian.Uint64(tail)
	case kindInbound:
		if len(tail) != 2 {
			return p, fmt.Errorf("%w: inbound key tail %d bytes", ErrCorrupt, len(tail))
		}
		p.pid = binary.BigEndian.Uint16(tail)
	}
	return p, nil
}
