// Package mqtttest encodes and decodes raw MQTT 3.1, 3.1.1 and 5 packets for
// tests that must control every byte on the wire: the broker's conformance
// suite, robustness tests and fuzzing. It builds frames from plain structs
// (and lets a test override any flag or length to make them wrong on
// purpose), reads packets off a connection, and decodes the packets a server
// sends (CONNACK, PUBLISH, the acknowledgements, SUBACK, UNSUBACK,
// DISCONNECT, AUTH) together with their MQTT 5 properties.
//
// It is a test helper: it imports package testing and is meant to be
// imported only from _test.go files.
package mqtttest
