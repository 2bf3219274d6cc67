/*
 * An independent PACE terminal for interop tests: OpenPACE (Debian's libeac3, the BSI
 * TR-03110 implementation used by OpenSC's npa-tool) does every cryptographic step, this file
 * only moves APDUs through PC/SC. Debian ships no OpenPACE tool that talks to a card (the
 * `openpace` package has cvc-create and cvc-print; OpenSC's npa-tool is built without
 * OpenPACE), hence this small program.
 *
 *   openpace_terminal READER (mrz MRZ_INFORMATION | can CAN)
 *
 * Reads EF.CardAccess, runs PACE (MSE:Set AT and four GENERAL AUTHENTICATEs) with OpenPACE's
 * PACE_STEP* functions, then under OpenPACE's secure messaging (EAC_encrypt, EAC_authenticate,
 * SSC kept by OpenPACE) selects the eMRTD application and EF.COM and reads EF.COM's first
 * bytes. Prints one line per step and `OK <protocol> <EF.COM hex>` at the end; exits 1 on any
 * failure with the step named. The MRZ password is given as MRZ_information (number, check
 * digit, birth date, check digit, expiry, check digit): K = SHA-1 of it, passed to OpenPACE as
 * a raw secret (OpenPACE's own MRZ encoding parses ID-card TD1 lines).
 */
#include <eac/eac.h>
#include <eac/objects.h>
#include <eac/pace.h>
#include <openssl/buffer.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <winscard.h>

static SCARDHANDLE card;
static DWORD proto;
static int connected;

/* Leaves the card reset (power cycled): the next session starts at the master file, as
 * countersign's reader leaves it. */
static void leave(void) {
    if (connected)
        SCardDisconnect(card, SCARD_RESET_CARD);
    connected = 0;
}

static void die(const char *what) {
    fprintf(stderr, "openpace_terminal: %s\n", what);
    leave();
    exit(1);
}

static void hex(const char *label, const unsigned char *b, size_t n) {
    printf("%s ", label);
    for (size_t i = 0; i < n; i++)
        printf("%02X", b[i]);
    printf("\n");
}

/* One APDU; returns the response length including SW1 SW2. */
static size_t transmit(const unsigned char *apdu, size_t len, unsigned char *resp) {
    DWORD rlen = 258;
    const SCARD_IO_REQUEST *pci = proto == SCARD_PROTOCOL_T1 ? SCARD_PCI_T1 : SCARD_PCI_T0;
    if (SCardTransmit(card, pci, apdu, len, NULL, resp, &rlen) != SCARD_S_SUCCESS || rlen < 2)
        die("SCardTransmit failed");
    return rlen;
}

static unsigned sw_of(const unsigned char *resp, size_t n) {
    return (resp[n - 2] << 8) | resp[n - 1];
}

static BUF_MEM *buf(const unsigned char *data, size_t n) {
    BUF_MEM *b = BUF_MEM_new();
    if (!b || !BUF_MEM_grow(b, n))
        die("out of memory");
    memcpy(b->data, data, n);
    b->length = n;
    return b;
}

/* GENERAL AUTHENTICATE with 7C { tag value }; returns the value of `want` in the answer. */
static BUF_MEM *general_authenticate(int last, unsigned char tag, const BUF_MEM *value,
                                     unsigned char want, const char *step) {
    unsigned char apdu[300], resp[260];
    size_t n = 0, inner = value ? value->length + 2 : 0;
    apdu[n++] = last ? 0x00 : 0x10;
    apdu[n++] = 0x86;
    apdu[n++] = 0;
    apdu[n++] = 0;
    apdu[n++] = (unsigned char)(inner + 2);
    apdu[n++] = 0x7C;
    apdu[n++] = (unsigned char)inner;
    if (value) {
        apdu[n++] = tag;
        apdu[n++] = (unsigned char)value->length;
        memcpy(apdu + n, value->data, value->length);
        n += value->length;
    }
    apdu[n++] = 0x00;
    size_t r = transmit(apdu, n, resp);
    if (sw_of(resp, r) != 0x9000) {
        fprintf(stderr, "openpace_terminal: %s answered %04X\n", step, sw_of(resp, r));
        leave();
        exit(1);
    }
    /* 7C L { want L value }: one-byte lengths (points of 256- and 384-bit curves fit). */
    if (r < 6 || resp[0] != 0x7C || resp[2] != want || (size_t)resp[3] + 6 > r)
        die(step);
    return buf(resp + 4, resp[3]);
}

static void pad(const EAC_CTX *ctx, unsigned char *out, size_t *n) {
    BUF_MEM *in = buf(out, *n);
    BUF_MEM *p = EAC_add_iso_pad(ctx, in);
    if (!p)
        die("padding");
    memcpy(out, p->data, p->length);
    *n = p->length;
    BUF_MEM_free(in);
    BUF_MEM_free(p);
}

/* One command under OpenPACE's secure messaging; returns the decrypted response data length
 * and the inner status word in *sw. */
static size_t secure(const EAC_CTX *ctx, unsigned char ins, unsigned char p1, unsigned char p2,
                     const unsigned char *data, size_t dlen, int le, unsigned char *out,
                     unsigned *sw) {
    unsigned char mac_in[300], apdu[300], resp[260];
    size_t m = 0, n = 0;
    unsigned char do87[64], do97[3];
    size_t l87 = 0, l97 = 0;
    if (!EAC_increment_ssc(ctx))
        die("SSC");
    if (dlen) {
        unsigned char plain[64];
        size_t pl = dlen;
        memcpy(plain, data, dlen);
        pad(ctx, plain, &pl);
        BUF_MEM *p = buf(plain, pl);
        BUF_MEM *enc = EAC_encrypt(ctx, p);
        if (!enc)
            die("EAC_encrypt");
        do87[l87++] = 0x87;
        do87[l87++] = (unsigned char)(enc->length + 1);
        do87[l87++] = 0x01;
        memcpy(do87 + l87, enc->data, enc->length);
        l87 += enc->length;
        BUF_MEM_free(p);
        BUF_MEM_free(enc);
    }
    if (le >= 0) {
        do97[l97++] = 0x97;
        do97[l97++] = 0x01;
        do97[l97++] = (unsigned char)le;
    }
    unsigned char header[4] = {0x0C, ins, p1, p2};
    memcpy(mac_in, header, 4);
    m = 4;
    pad(ctx, mac_in, &m);
    memcpy(mac_in + m, do87, l87);
    m += l87;
    memcpy(mac_in + m, do97, l97);
    m += l97;
    pad(ctx, mac_in, &m);
    BUF_MEM *mi = buf(mac_in, m);
    BUF_MEM *mac = EAC_authenticate(ctx, mi);
    if (!mac || mac->length != 8)
        die("EAC_authenticate");
    memcpy(apdu, header, 4);
    n = 4;
    apdu[n++] = (unsigned char)(l87 + l97 + 10);
    memcpy(apdu + n, do87, l87);
    n += l87;
    memcpy(apdu + n, do97, l97);
    n += l97;
    apdu[n++] = 0x8E;
    apdu[n++] = 0x08;
    memcpy(apdu + n, mac->data, 8);
    n += 8;
    apdu[n++] = 0x00;
    BUF_MEM_free(mi);
    BUF_MEM_free(mac);

    size_t r = transmit(apdu, n, resp);
    if (sw_of(resp, r) != 0x9000 || r < 16)
        die("a secure messaging command was answered without secure messaging");
    if (!EAC_increment_ssc(ctx))
        die("SSC");
    /* [87 L 01 enc] 99 02 SW 8E 08 MAC */
    size_t i = 0, enc_at = 0, enc_len = 0;
    if (resp[0] == 0x87) {
        enc_len = resp[1] - 1;
        enc_at = 3;
        i = 2 + resp[1];
    }
    if (resp[i] != 0x99 || resp[i + 1] != 2 || resp[i + 4] != 0x8E || resp[i + 5] != 8)
        die("malformed secure messaging response");
    *sw = (resp[i + 2] << 8) | resp[i + 3];
    unsigned char covered[260];
    size_t c = i + 4;
    memcpy(covered, resp, c);
    pad(ctx, covered, &c);
    BUF_MEM *cv = buf(covered, c), *rmac = buf(resp + i + 6, 8);
    if (EAC_verify_authentication(ctx, cv, rmac) != 1)
        die("the chip's response MAC does not verify");
    BUF_MEM_free(cv);
    BUF_MEM_free(rmac);
    if (!enc_len)
        return 0;
    BUF_MEM *e = buf(resp + enc_at, enc_len);
    BUF_MEM *d = EAC_decrypt(ctx, e);
    if (!d)
        die("EAC_decrypt");
    size_t len = d->length;
    while (len && d->data[len - 1] == 0)
        len--;
    if (!len || (unsigned char)d->data[len - 1] != 0x80)
        die("bad padding in a response");
    len--;
    memcpy(out, d->data, len);
    BUF_MEM_free(e);
    BUF_MEM_free(d);
    return len;
}

int main(int argc, char **argv) {
    if (argc != 4 || (strcmp(argv[2], "mrz") && strcmp(argv[2], "can")))
        die("usage: openpace_terminal READER (mrz MRZ_INFORMATION | can CAN)");
    SCARDCONTEXT pcsc;
    if (SCardEstablishContext(SCARD_SCOPE_USER, NULL, NULL, &pcsc) != SCARD_S_SUCCESS)
        die("no PC/SC service");
    /* The card may reach the reader just after we start: retry for up to 10 s. */
    LONG rv = SCARD_E_NO_SMARTCARD;
    for (int i = 0; i < 100 && rv != SCARD_S_SUCCESS; i++) {
        rv = SCardConnect(pcsc, argv[1], SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                          &card, &proto);
        if (rv != SCARD_S_SUCCESS)
            usleep(100000);
    }
    if (rv != SCARD_S_SUCCESS) {
        fprintf(stderr, "openpace_terminal: cannot connect to the card: %s\n",
                pcsc_stringify_error(rv));
        exit(1);
    }
    connected = 1;

    unsigned char resp[260];
    static const unsigned char read_card_access[] = {0x00, 0xB0, 0x9C, 0x00, 0x00};
    size_t r = transmit(read_card_access, sizeof read_card_access, resp);
    if (sw_of(resp, r) != 0x9000 && sw_of(resp, r) != 0x6282)
        die("no EF.CardAccess");
    hex("EF.CardAccess", resp, r - 2);

    EAC_init();
    EAC_CTX *ctx = EAC_CTX_new();
    if (!ctx || !EAC_CTX_init_ef_cardaccess(resp, r - 2, ctx) || !ctx->pace_ctx)
        die("OpenPACE does not accept EF.CardAccess");
    /* The PACEInfo's OID, as DER content bytes, for MSE:Set AT. */
    unsigned char oid[32];
    ASN1_OBJECT *obj = OBJ_nid2obj(ctx->pace_ctx->protocol);
    int oid_len = obj ? OBJ_length(obj) : 0;
    if (oid_len <= 0 || oid_len > (int)sizeof oid)
        die("unknown PACE protocol");
    memcpy(oid, OBJ_get0_data(obj), oid_len);
    printf("protocol %s\n", OBJ_nid2sn(ctx->pace_ctx->protocol));

    PACE_SEC *sec;
    unsigned char reference;
    if (!strcmp(argv[2], "mrz")) {
        unsigned char k[SHA_DIGEST_LENGTH];
        SHA1((const unsigned char *)argv[3], strlen(argv[3]), k);
        sec = PACE_SEC_new((const char *)k, sizeof k, PACE_RAW);
        reference = 1;
    } else {
        sec = PACE_SEC_new(argv[3], strlen(argv[3]), PACE_CAN);
        reference = 2;
    }
    if (!sec)
        die("PACE_SEC_new");

    unsigned char mse[64];
    size_t n = 0;
    mse[n++] = 0x00;
    mse[n++] = 0x22;
    mse[n++] = 0xC1;
    mse[n++] = 0xA4;
    mse[n++] = (unsigned char)(oid_len + 5);
    mse[n++] = 0x80;
    mse[n++] = (unsigned char)oid_len;
    memcpy(mse + n, oid, oid_len);
    n += oid_len;
    mse[n++] = 0x83;
    mse[n++] = 0x01;
    mse[n++] = reference;
    r = transmit(mse, n, resp);
    if (sw_of(resp, r) != 0x9000)
        die("MSE:Set AT refused");

    BUF_MEM *z = general_authenticate(0, 0, NULL, 0x80, "GENERAL AUTHENTICATE (nonce)");
    if (!PACE_STEP2_dec_nonce(ctx, sec, z))
        die("PACE_STEP2_dec_nonce");
    BUF_MEM *map = PACE_STEP3A_generate_mapping_data(ctx);
    if (!map)
        die("PACE_STEP3A_generate_mapping_data");
    BUF_MEM *map_ic = general_authenticate(0, 0x81, map, 0x82, "GENERAL AUTHENTICATE (mapping)");
    if (!PACE_STEP3A_map_generator(ctx, map_ic))
        die("PACE_STEP3A_map_generator");
    BUF_MEM *eph = PACE_STEP3B_generate_ephemeral_key(ctx);
    if (!eph)
        die("PACE_STEP3B_generate_ephemeral_key");
    BUF_MEM *eph_ic =
        general_authenticate(0, 0x83, eph, 0x84, "GENERAL AUTHENTICATE (key agreement)");
    if (!PACE_STEP3B_compute_shared_secret(ctx, eph_ic) || !PACE_STEP3C_derive_keys(ctx))
        die("PACE_STEP3B_compute_shared_secret / PACE_STEP3C_derive_keys");
    BUF_MEM *token = PACE_STEP3D_compute_authentication_token(ctx, eph_ic);
    if (!token)
        die("PACE_STEP3D_compute_authentication_token");
    BUF_MEM *token_ic = general_authenticate(1, 0x85, token, 0x86, "GENERAL AUTHENTICATE (tokens)");
    if (PACE_STEP3D_verify_authentication_token(ctx, token_ic) != 1)
        die("the chip's authentication token does not verify");
    printf("PACE established\n");

    if (!EAC_CTX_set_encryption_ctx(ctx, EAC_ID_PACE))
        die("EAC_CTX_set_encryption_ctx");
    static const unsigned char aid[] = {0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01};
    static const unsigned char com[] = {0x01, 0x1E};
    unsigned char data[256];
    unsigned sw;
    secure(ctx, 0xA4, 0x04, 0x0C, aid, sizeof aid, -1, data, &sw);
    if (sw != 0x9000)
        die("SELECT of the eMRTD application refused");
    secure(ctx, 0xA4, 0x02, 0x0C, com, sizeof com, -1, data, &sw);
    if (sw != 0x9000)
        die("SELECT EF.COM refused");
    size_t got = secure(ctx, 0xB0, 0x00, 0x00, NULL, 0, 8, data, &sw);
    if (sw != 0x9000 || got != 8)
        die("READ BINARY of EF.COM failed");
    printf("OK %s ", OBJ_nid2sn(ctx->pace_ctx->protocol));
    hex("", data, got);
    leave();
    return 0;
}
