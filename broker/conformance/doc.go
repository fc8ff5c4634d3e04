// Package conformance holds the broker's protocol conformance suite: raw-packet
// tests, grouped by specification section, that prove the broker answers
// clients exactly as MQTT 5.0, MQTT 3.1.1 and MQTT 3.1 (MQIsdp) require,
// including clients that are buggy or hostile. The package has no code of its
// own; everything lives in its _test.go files.
//
// # What the suite proves
//
// testdata holds a catalog per specification: every numbered normative
// statement of MQTT 5.0 (testdata/mqtt-v5.0.txt) and MQTT 3.1.1
// (testdata/mqtt-v3.1.1.txt), and a few named rules for MQTT 3.1
// (testdata/mqtt-v3.1.txt), which has no numbered statements. Each line
// gives the rule id, its role, a paraphrase in our own words and an optional
// note, separated by tabs:
//
//	MQTT-3.1.2-2	server	protocol version the broker will not serve: ...	(note)
//
// The role is server (the broker must do it, or police it on what clients
// send), client (a duty of clients only; nothing for the broker to do) or both
// (it binds whichever side sends or receives, the broker included). The note
// is empty, or "n/a: <reason>" for a server-side rule that cannot or need not
// be tested for this broker, with the concrete reason.
//
// A test proves a rule by citing it, in a comment or a rule field, next to
// the check that fails when the broker breaks the rule. The catalog test
// (catalog_test.go) scans every _test.go file of the module and fails when
// a citation names no catalogued rule (with file and line), when a rule is
// both cited and marked n/a, or when a catalog line is malformed. A test
// that cites a rule is the broker's claim that the rule holds; cite exactly
// what the test proves, nothing else.
//
// # How to cite a rule
//
// The two OASIS specifications reuse the same ids with different meanings,
// so a citation says which one it means:
//
//	[MQTT-3.1.2-2]        MQTT 5.0 rule 3.1.2-2 (no suffix: MQTT 5.0)
//	[MQTT-3.1.2-2@3.1.1]  MQTT 3.1.1 rule 3.1.2-2
//	[MQIsdp-1]            MQTT 3.1 rule 1 of testdata/mqtt-v3.1.txt
//
// A bracketed reference to a section of up to three levels without a
// statement number, such as [MQTT-4.3.2], is not a citation and is ignored.
// Anything else in brackets that starts like a citation but does not parse
// fails the catalog test, including the spec's own misprint [MQTT-3.1.2.7]
// (write [MQTT-3.1.2-7@3.1.1]).
//
// # CONFORMANCE.md
//
// CONFORMANCE.md at the repository root is generated from the catalogs and
// the citations: per specification, the number of server-side rules (role
// server or both) that are tested, n/a or still open, then a table per
// specification section with every rule and its status. The catalog test
// fails when the file is out of date. After adding or changing a citation
// or a catalog line, regenerate it with
//
//	go test ./broker/conformance -run TestConformanceReport -update
//
// and commit the result. An open rule is honest information, not a failure.
package conformance
