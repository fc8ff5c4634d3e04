package broker

import (
	"bytes"
	"unicode/utf8"
)

// validString reports whether b is a valid MQTT UTF-8 Encoded String: well
// formed UTF-8 without surrogates ([MQTT-1.5.4-1], [MQTT-1.5.3-1@3.1.1]) and
// without U+0000 ([MQTT-1.5.4-2], [MQTT-1.5.3-2@3.1.1]). Code points MQTT 5
// only advises against (control characters, non-characters) are accepted,
// and U+FEFF is kept as it is ([MQTT-1.5.4-3]).
func validString(b []byte) bool {
	for i, x := range b {
		if x == 0 {
			return false
		}
		if x >= utf8.RuneSelf {
			return utf8.Valid(b[i:]) && bytes.IndexByte(b[i:], 0) < 0
		}
	}
	return true
}

// checkTopicName checks a PUBLISH or Will topic: valid UTF-8, at least one
// character ([MQTT-4.7.3-1]), no wildcards ([MQTT-3.3.2-2], [MQTT-4.7.0-1]).
func checkTopicName(t []byte) *violation {
	if !validString(t) {
		return malformed("topic name is not valid UTF-8")
	}
	if len(t) == 0 {
		return protocolError("empty topic name")
	}
	if bytes.IndexByte(t, '+') >= 0 || bytes.IndexByte(t, '#') >= 0 {
		return protocolError("wildcard in topic name")
	}
	return nil
}

// checkTopicFilter checks a topic filter's syntax: at least one character
// ([MQTT-4.7.3-1]), '#' alone in the last level ([MQTT-4.7.1-1]), '+' alone
// in its level ([MQTT-4.7.1-2]). For MQTT 5 (shared true) it checks a
// shared subscription's form too: "$share/", a share name of at least one
// character without '/', '+' or '#', then "/" and a filter ([MQTT-4.8.2-1],
// [MQTT-4.8.2-2]). The filter's UTF-8 is checked by the caller.
func checkTopicFilter(f []byte, shared bool) *violation {
	if shared && isShared(f) {
		rest := f[len(sharePrefix):]
		slash := bytes.IndexByte(rest, '/')
		if slash <= 0 {
			return protocolError("shared subscription without share name or filter")
		}
		if bytes.ContainsAny(rest[:slash], "+#") {
			return protocolError("wildcard in share name")
		}
		f = rest[slash+1:]
	}
	if len(f) == 0 {
		return protocolError("empty topic filter")
	}
	start := 0
	for i, x := range f {
		switch x {
		case '/':
			start = i + 1
		case '+':
			if i != start || (i+1 < len(f) && f[i+1] != '/') {
				return protocolError("'+' not alone in its level")
			}
		case '#':
			if i != start || i != len(f)-1 {
				return protocolError("'#' not alone in the last level")
			}
		}
	}
	return nil
}

const sharePrefix = "$share/"

func isShared(f []byte) bool { return bytes.HasPrefix(f, []byte(sharePrefix)) }
