package conformance_test

// The generator of CONFORMANCE.md: small and deterministic, rules sorted by
// section and then by number.

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// suiteDir is trimmed from the files named in the report: most citations
// live in this package.
const suiteDir = "broker/conformance/"

// sectionTitles names the sections of each specification that have rules.
var sectionTitles = map[string]map[string]string{
	"5.0": {
		"1.5": "Data representation", "2.1": "Fixed header", "2.2": "Variable header",
		"3.1": "CONNECT", "3.2": "CONNACK", "3.3": "PUBLISH", "3.4": "PUBACK", "3.5": "PUBREC",
		"3.6": "PUBREL", "3.7": "PUBCOMP", "3.8": "SUBSCRIBE", "3.9": "SUBACK", "3.10": "UNSUBSCRIBE",
		"3.11": "UNSUBACK", "3.12": "PINGREQ", "3.14": "DISCONNECT", "3.15": "AUTH",
		"4.1": "Session state", "4.2": "Network connections", "4.3": "Quality of Service levels and flows",
		"4.4": "Message delivery retry", "4.5": "Message receipt", "4.6": "Message ordering",
		"4.7": "Topic names and topic filters", "4.8": "Subscriptions", "4.9": "Flow control",
		"4.12": "Enhanced authentication", "4.13": "Handling errors", "6": "WebSocket transport",
	},
	"3.1.1": {
		"1.5": "Data representations", "2.2": "Fixed header", "2.3": "Variable header",
		"3.1": "CONNECT", "3.2": "CONNACK", "3.3": "PUBLISH", "3.6": "PUBREL", "3.8": "SUBSCRIBE",
		"3.9": "SUBACK", "3.10": "UNSUBSCRIBE", "3.12": "PINGREQ", "3.14": "DISCONNECT",
		"4.1": "Storing state", "4.3": "Quality of Service levels and flows", "4.4": "Message delivery retry",
		"4.5": "Message receipt", "4.6": "Message ordering", "4.7": "Topic names and topic filters",
		"4.8": "Handling errors", "6": "WebSocket transport", "7": "Conformance targets",
		"7.1": "Conformance clauses",
	},
	"3.1": {"MQIsdp": "Rules named by this project"},
}

// status is what the report says about one rule, and the counter it adds to.
func status(r rule, files []string) (text, count string) {
	switch {
	case len(files) > 0:
		short := make([]string, len(files))
		for i, f := range files {
			short[i] = strings.TrimPrefix(f, suiteDir)
		}
		return "tested (" + strings.Join(short, ", ") + ")", "tested"
	case r.na():
		return r.note, "n/a"
	case r.serverSide():
		return "open", "open"
	default:
		return "not a broker duty", "client"
	}
}

// report renders CONFORMANCE.md.
func report(cats []catalog, cs []citation) []byte {
	var b bytes.Buffer
	b.WriteString("# Protocol conformance\n\n")
	b.WriteString("Generated from the rule catalogs in `broker/conformance/testdata` and the rule citations in the\n")
	b.WriteString("repository's tests; do not edit by hand. Regenerate with\n")
	b.WriteString("`go test ./broker/conformance -run TestConformanceReport -update`.\n\n")
	b.WriteString("A server-side rule (role server or both) is *tested* when a test cites it, *n/a* when it cannot\n")
	b.WriteString("or need not be tested for this broker (the reason is given), and *open* otherwise. Paraphrases\n")
	b.WriteString("are ours; the specifications hold the normative text. Test files without a directory are in\n")
	b.WriteString("`" + suiteDir + "`. How to cite a rule: see `broker/conformance/doc.go`.\n\n")
	b.WriteString("| Specification | Server-side rules | Tested | n/a | Open | Client-only rules |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	type body struct {
		cat    catalog
		counts map[string]int
		files  map[string][]string
	}
	var bodies []body
	for _, cat := range cats {
		files := citedFiles(cs, cat.spec.key)
		counts := map[string]int{}
		for _, r := range cat.rules {
			_, c := status(r, files[r.id])
			if r.serverSide() {
				counts[c]++
				counts["server"]++
			} else {
				counts["client"]++
			}
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d |\n", cat.spec.title,
			counts["server"], counts["tested"], counts["n/a"], counts["open"], counts["client"])
		bodies = append(bodies, body{cat, counts, files})
	}
	for _, bd := range bodies {
		s := bd.cat.spec
		fmt.Fprintf(&b, "\n## %s\n\n", s.title)
		fmt.Fprintf(&b, "Catalog `testdata/%s`; cite a rule as `[%s%s]`. Server-side rules: %d tested, %d n/a, %d open.\n",
			s.file, exampleID(bd.cat), s.suffix, bd.counts["tested"], bd.counts["n/a"], bd.counts["open"])
		rules := slices.Clone(bd.cat.rules)
		sortRules(rules)
		current := ""
		for _, r := range rules {
			if sec := section(r.id); sec != current {
				current = sec
				heading := sec
				if title := sectionTitles[s.key][sec]; title != "" {
					heading += " " + title
				}
				fmt.Fprintf(&b, "\n### %s\n\n| Rule | Role | Requirement (paraphrase) | Status |\n|---|---|---|---|\n", heading)
			}
			text, _ := status(r, bd.files[r.id])
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.id, r.role, r.text, text)
		}
	}
	return b.Bytes()
}

// exampleID is the first rule of a catalog in id order, used to show the
// citation form.
func exampleID(c catalog) string {
	rules := slices.Clone(c.rules)
	sortRules(rules)
	return rules[0].id
}
