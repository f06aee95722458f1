//go:build amd64 && !purego

#include "textflag.h"

// STEP6x16 does one rank-1 update of the 6×16 accumulator tile Y4…Y15 with
// row AO (byte offset) of the six A rows at SI, SI+lda, SI+2lda, R11,
// R11+lda, R11+2lda and with the 16 packed B values at BO(DI).
#define STEP6x16(AO, BO) \
	VMOVUPS      BO(DI), Y0; \
	VMOVUPS      BO+32(DI), Y1; \
	VBROADCASTSS AO(SI), Y2; \
	VFMADD231PS  Y0, Y2, Y4; \
	VFMADD231PS  Y1, Y2, Y5; \
	VBROADCASTSS AO(SI)(R9*1), Y3; \
	VFMADD231PS  Y0, Y3, Y6; \
	VFMADD231PS  Y1, Y3, Y7; \
	VBROADCASTSS AO(SI)(R9*2), Y2; \
	VFMADD231PS  Y0, Y2, Y8; \
	VFMADD231PS  Y1, Y2, Y9; \
	VBROADCASTSS AO(R11), Y3; \
	VFMADD231PS  Y0, Y3, Y10; \
	VFMADD231PS  Y1, Y3, Y11; \
	VBROADCASTSS AO(R11)(R9*1), Y2; \
	VFMADD231PS  Y0, Y2, Y12; \
	VFMADD231PS  Y1, Y2, Y13; \
	VBROADCASTSS AO(R11)(R9*2), Y3; \
	VFMADD231PS  Y0, Y3, Y14; \
	VFMADD231PS  Y1, Y3, Y15

// STORESET writes the accumulator pair LO, HI scaled by Y0 to the C row at
// DX and advances DX by one row; STOREADD adds them to it instead.
#define STORESET(LO, HI) \
	VMULPS  Y0, LO, LO; \
	VMULPS  Y0, HI, HI; \
	VMOVUPS LO, (DX); \
	VMOVUPS HI, 32(DX); \
	ADDQ    R8, DX

#define STOREADD(LO, HI) \
	VMULPS  Y0, LO, LO; \
	VMULPS  Y0, HI, HI; \
	VADDPS  (DX), LO, LO; \
	VADDPS  32(DX), HI, HI; \
	VMOVUPS LO, (DX); \
	VMOVUPS HI, 32(DX); \
	ADDQ    R8, DX

// func sgemm6x16AVX2(k int, a *float32, lda int, b *float32, c *float32, ldc int, alpha float32, acc int, pf *float32)
TEXT ·sgemm6x16AVX2(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R9
	MOVQ b+24(FP), DI
	MOVQ c+32(FP), DX
	MOVQ ldc+40(FP), R8
	SHLQ $2, R9
	SHLQ $2, R8
	LEAQ (SI)(R9*2), R11
	ADDQ R9, R11

	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

	MOVQ CX, BX
	SHRQ $2, BX
	ANDQ $3, CX
	TESTQ BX, BX
	JZ   tail
	MOVQ pf+64(FP), R12
	TESTQ R12, R12
	JZ   loop4

	// The same loop, also pulling the next B panel (R12, as long as this
	// one) towards L2, one 64-byte row per k step, while this one is used.
loop4pf:
	PREFETCHT1 (R12)
	STEP6x16(0, 0)
	PREFETCHT1 64(R12)
	STEP6x16(4, 64)
	PREFETCHT1 128(R12)
	STEP6x16(8, 128)
	PREFETCHT1 192(R12)
	STEP6x16(12, 192)
	ADDQ $16, SI
	ADDQ $16, R11
	ADDQ $256, DI
	ADDQ $256, R12
	DECQ BX
	JNZ  loop4pf
	JMP  tail

loop4:
	STEP6x16(0, 0)
	STEP6x16(4, 64)
	STEP6x16(8, 128)
	STEP6x16(12, 192)
	ADDQ $16, SI
	ADDQ $16, R11
	ADDQ $256, DI
	DECQ BX
	JNZ  loop4

tail:
	TESTQ CX, CX
	JZ    store

tail1:
	STEP6x16(0, 0)
	ADDQ $4, SI
	ADDQ $4, R11
	ADDQ $64, DI
	DECQ CX
	JNZ  tail1

store:
	VBROADCASTSS alpha+48(FP), Y0
	MOVQ         acc+56(FP), AX
	TESTQ        AX, AX
	JNZ          add
	STORESET(Y4, Y5)
	STORESET(Y6, Y7)
	STORESET(Y8, Y9)
	STORESET(Y10, Y11)
	STORESET(Y12, Y13)
	STORESET(Y14, Y15)
	VZEROUPPER
	RET

add:
	STOREADD(Y4, Y5)
	STOREADD(Y6, Y7)
	STOREADD(Y8, Y9)
	STOREADD(Y10, Y11)
	STOREADD(Y12, Y13)
	STOREADD(Y14, Y15)
	VZEROUPPER
	RET
