// Package natstest starts real, in-process NATS servers with JetStream for
// tests: on 127.0.0.1, on a random port, with a file store in a test
// directory, and able to restart on the same port and store so that tests
// can take the server away in the middle of a job.
package natstest
