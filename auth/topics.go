package auth

import "strings"

// sharePrefix starts a shared subscription filter: $share/{group}/{filter}.
const sharePrefix = "$share/"

// sysLevel is the first level of the broker's own topics.
const sysLevel = "$SYS"

// ValidTopic reports whether name is a valid MQTT topic name: non-empty,
// no wildcard characters and no NUL [MQTT-4.7.3-1] [MQTT-4.7.3-2].
func ValidTopic(name string) bool {
	return name != "" && !strings.ContainsAny(name, "+#\x00")
}

// ValidFilter reports whether f is a valid MQTT topic filter: non-empty, no
// NUL, '+' and '#' only as whole levels and '#' only last [MQTT-4.7.1-1]
// [MQTT-4.7.1-2] [MQTT-4.7.3-1]. Shared subscription prefixes are not
// understood here; see SplitShared.
func ValidFilter(f string) bool {
	if f == "" || strings.IndexByte(f, 0) >= 0 {
		return false
	}
	for rest := f; ; {
		level, tail, more := strings.Cut(rest, "/")
		if strings.ContainsAny(level, "+#") && len(level) != 1 {
			return false
		}
		if level == "#" && more {
			return false
		}
		if !more {
			return true
		}
		rest = tail
	}
}

// SplitShared splits a shared subscription filter $share/{group}/{filter}
// into its group and filter. ok is false for a filter that is not shared;
// a shared filter with an empty or wildcard group, or no filter, returns
// ok true and valid false [MQTT-4.8.2-1] [MQTT-4.8.2-2].
func SplitShared(f string) (group, filter string, ok, valid bool) {
	if !strings.HasPrefix(f, sharePrefix) {
		return "", f, false, true
	}
	group, filter, found := strings.Cut(f[len(sharePrefix):], "/")
	if !found || group == "" || strings.ContainsAny(group, "+#") || filter == "" {
		return group, filter, true, false
	}
	return group, filter, true, true
}

// MatchTopic reports whether topic name matches filter f. Wildcards in the
// first level never match a topic that starts with '$' [MQTT-4.7.2-1].
func MatchTopic(f, topic string) bool {
	return matchLevels(splitLevels(f), topic)
}

// FilterContains reports whether every topic matched by filter sub is also
// matched by filter grant: a subscription to sub can never deliver a message
// outside grant. A grant "a/+" does not contain "a/#"; a grant "a/#" contains
// "a/+/b" and "a". Both filters must be valid; shared prefixes must be
// removed first.
func FilterContains(grant, sub string) bool {
	return containsLevels(splitLevels(grant), sub)
}

func splitLevels(f string) []string { return strings.Split(f, "/") }

// matchLevels matches a topic against a pre-split filter without allocating.
func matchLevels(g []string, topic string) bool {
	if len(g) > 0 && isWild(g[0]) && strings.HasPrefix(topic, "$") {
		return false // [MQTT-4.7.2-1]
	}
	rest := topic
	for i, gl := range g {
		if gl == "#" {
			return true // also matches the parent level itself [MQTT-4.7.1-2]
		}
		level, tail, more := strings.Cut(rest, "/")
		if gl != "+" && gl != level {
			return false
		}
		if !more {
			// the topic ends here: the filter must end too, or continue only with '#'
			return i == len(g)-1 || i == len(g)-2 && g[i+1] == "#"
		}
		rest = tail
	}
	return false // the topic has more levels than the filter
}

// containsLevels reports whether the pre-split grant contains filter sub.
func containsLevels(g []string, sub string) bool {
	if len(g) > 0 && isWild(g[0]) && strings.HasPrefix(sub, "$") {
		return false // wildcard grants never reach $ topics [MQTT-4.7.2-1]
	}
	rest := sub
	for i, gl := range g {
		if gl == "#" {
			return true
		}
		level, tail, more := strings.Cut(rest, "/")
		switch {
		case level == "#":
			return false // sub reaches any depth, the grant does not
		case level == "+":
			if gl != "+" {
				return false
			}
		default:
			if gl != "+" && gl != level {
				return false
			}
		}
		if !more {
			return i == len(g)-1 || i == len(g)-2 && g[i+1] == "#"
		}
		rest = tail
	}
	return false // sub has more levels than the grant
}

func isWild(level string) bool { return level == "+" || level == "#" }
