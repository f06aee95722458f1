// Package csvio reads CSV files with a header line as Arrow records, using
// arrow's CSV reader with type inference (integers, floats, booleans and
// timestamps become typed columns; everything else stays a string). Empty
// fields and "NULL"/"null" are read as nulls. A malformed line is an error
// naming the file and the first row of the chunk being read.
package csvio
