// Package buildinfo tells which build of embedpipe is running: the module
// version and the commit it was built from, as the go command stamps them.
package buildinfo
