// Package fuzzflags sets the defaults of the go command's fuzzing flags that
// embedpipe's fuzz targets need, from their packages' TestMain. It is for
// tests only.
package fuzzflags
