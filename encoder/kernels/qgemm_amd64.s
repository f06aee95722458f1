//go:build amd64 && !purego

#include "textflag.h"

// QSTEP does one k-pair step of the 6×16 int32 tile Y4…Y15: the pair at
// byte offset AO of the six A rows (SI, SI+lda, SI+2lda, R11, R11+lda,
// R11+2lda) broadcast as a dword, times the 16 column pairs at BO(DI), with
// VPMADDWD (a0·w0 + a1·w1 per int32 lane, exact) and VPADDD.
#define QSTEP(AO, BO) \
	VMOVDQU      BO(DI), Y0; \
	VMOVDQU      BO+32(DI), Y1; \
	VPBROADCASTD AO(SI), Y2; \
	VPMADDWD     Y0, Y2, Y3; \
	VPADDD       Y3, Y4, Y4; \
	VPMADDWD     Y1, Y2, Y3; \
	VPADDD       Y3, Y5, Y5; \
	VPBROADCASTD AO(SI)(R9*1), Y2; \
	VPMADDWD     Y0, Y2, Y3; \
	VPADDD       Y3, Y6, Y6; \
	VPMADDWD     Y1, Y2, Y3; \
	VPADDD       Y3, Y7, Y7; \
	VPBROADCASTD AO(SI)(R9*2), Y2; \
	VPMADDWD     Y0, Y2, Y3; \
	VPADDD       Y3, Y8, Y8; \
	VPMADDWD     Y1, Y2, Y3; \
	VPADDD       Y3, Y9, Y9; \
	VPBROADCASTD AO(R11), Y2; \
	VPMADDWD     Y0, Y2, Y3; \
	VPADDD       Y3, Y10, Y10; \
	VPMADDWD     Y1, Y2, Y3; \
	VPADDD       Y3, Y11, Y11; \
	VPBROADCASTD AO(R11)(R9*1), Y2; \
	VPMADDWD     Y0, Y2, Y3; \
	VPADDD       Y3, Y12, Y12; \
	VPMADDWD     Y1, Y2, Y3; \
	VPADDD       Y3, Y13, Y13; \
	VPBROADCASTD AO(R11)(R9*2), Y2; \
	VPMADDWD     Y0, Y2, Y3; \
	VPADDD       Y3, Y14, Y14; \
	VPMADDWD     Y1, Y2, Y3; \
	VPADDD       Y3, Y15, Y15

// QRAW stores the accumulator pair LO, HI to the raw tile row at DX.
#define QRAW(LO, HI) \
	VMOVDQU LO, (DX); \
	VMOVDQU HI, 32(DX); \
	ADDQ    $64, DX

// QDEQ converts the accumulator pair LO, HI of row R to float32 and scales
// it by sa[R] (BX) and then by the column scales Y0, Y1.
#define QDEQ(LO, HI, R) \
	VCVTDQ2PS    LO, LO; \
	VCVTDQ2PS    HI, HI; \
	VBROADCASTSS R*4(BX), Y2; \
	VMULPS       Y2, LO, LO; \
	VMULPS       Y2, HI, HI; \
	VMULPS       Y0, LO, LO; \
	VMULPS       Y1, HI, HI

#define QSET(LO, HI, R) \
	QDEQ(LO, HI, R); \
	VMOVUPS LO, (DX); \
	VMOVUPS HI, 32(DX); \
	ADDQ    R8, DX

#define QADD(LO, HI, R) \
	QDEQ(LO, HI, R); \
	VADDPS  (DX), LO, LO; \
	VADDPS  32(DX), HI, HI; \
	VMOVUPS LO, (DX); \
	VMOVUPS HI, 32(DX); \
	ADDQ    R8, DX

// func qgemm6x16AVX2(kp int, a *int16, lda int, b *int16, c *float32, ldc int, sa, sw *float32, mode int, raw *[96]int32)
TEXT ·qgemm6x16AVX2(SB), NOSPLIT, $0-80
	MOVQ kp+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R9
	MOVQ b+24(FP), DI
	SHLQ $1, R9
	LEAQ (SI)(R9*2), R11
	ADDQ R9, R11

	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	VPXOR Y11, Y11, Y11
	VPXOR Y12, Y12, Y12
	VPXOR Y13, Y13, Y13
	VPXOR Y14, Y14, Y14
	VPXOR Y15, Y15, Y15

	MOVQ  CX, BX
	SHRQ  $2, BX
	ANDQ  $3, CX
	TESTQ BX, BX
	JZ    tail

loop4:
	QSTEP(0, 0)
	QSTEP(4, 64)
	QSTEP(8, 128)
	QSTEP(12, 192)
	ADDQ $16, SI
	ADDQ $16, R11
	ADDQ $256, DI
	DECQ BX
	JNZ  loop4

tail:
	TESTQ CX, CX
	JZ    store

tail1:
	QSTEP(0, 0)
	ADDQ $4, SI
	ADDQ $4, R11
	ADDQ $64, DI
	DECQ CX
	JNZ  tail1

store:
	MOVQ  mode+64(FP), AX
	TESTQ AX, AX
	JNZ   deq
	MOVQ  raw+72(FP), DX
	QRAW(Y4, Y5)
	QRAW(Y6, Y7)
	QRAW(Y8, Y9)
	QRAW(Y10, Y11)
	QRAW(Y12, Y13)
	QRAW(Y14, Y15)
	VZEROUPPER
	RET

deq:
	MOVQ    c+32(FP), DX
	MOVQ    ldc+40(FP), R8
	SHLQ    $2, R8
	MOVQ    sa+48(FP), BX
	MOVQ    sw+56(FP), R10
	VMOVUPS (R10), Y0
	VMOVUPS 32(R10), Y1
	CMPQ    AX, $1
	JNE     add
	QSET(Y4, Y5, 0)
	QSET(Y6, Y7, 1)
	QSET(Y8, Y9, 2)
	QSET(Y10, Y11, 3)
	QSET(Y12, Y13, 4)
	QSET(Y14, Y15, 5)
	VZEROUPPER
	RET

add:
	QADD(Y4, Y5, 0)
	QADD(Y6, Y7, 1)
	QADD(Y8, Y9, 2)
	QADD(Y10, Y11, 3)
	QADD(Y12, Y13, 4)
	QADD(Y14, Y15, 5)
	VZEROUPPER
	RET

// func absMaxAVX2(x *float32, n int) float32
TEXT ·absMaxAVX2(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	MOVL         $0x7fffffff, AX
	MOVL         AX, X1
	VPBROADCASTD X1, Y1
	VXORPS       Y0, Y0, Y0
	SHRQ         $3, CX
	JZ           amdone

amloop:
	VANDPS  (SI), Y1, Y2
	VMAXPS  Y2, Y0, Y0
	ADDQ    $32, SI
	DECQ    CX
	JNZ     amloop

amdone:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4e, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xb1, X0, X1
	VMAXPS       X1, X0, X0
	VMOVSS       X0, ret+16(FP)
	VZEROUPPER
	RET

// func quantAVX2(q *int16, x *float32, n int, inv float32)
TEXT ·quantAVX2(SB), NOSPLIT, $0-28
	MOVQ         q+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS inv+24(FP), Y0
	SHRQ         $3, CX
	JZ           qdone

qloop:
	VMULPS       (SI), Y0, Y1
	VCVTPS2DQ    Y1, Y1
	VEXTRACTI128 $1, Y1, X2
	VPACKSSDW    X2, X1, X1
	VMOVDQU      X1, (DI)
	ADDQ         $32, SI
	ADDQ         $16, DI
	DECQ         CX
	JNZ          qloop

qdone:
	VZEROUPPER
	RET
