/* embed.c - build helper: turns a file into a C array (no xxd on a bare Debian).
 * usage: embed NAME IN OUT  ->  const char NAME[] (NUL-terminated) and size_t NAME_len */
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: embed NAME IN OUT\n");
        return 2;
    }
    FILE *in = fopen(argv[2], "rb"), *out = fopen(argv[3], "w");
    if (in == NULL || out == NULL) {
        perror("embed");
        return 1;
    }
    fprintf(out, "/* generated from %s by tools/embed.c: do not edit */\n#include <stddef.h>\nconst char %s[] = {", argv[2],
            argv[1]);
    size_t n = 0;
    int c;
    while ((c = fgetc(in)) != EOF) {
        fprintf(out, "%s0x%02x,", n % 16 ? "" : "\n", c);
        n++;
    }
    fprintf(out, "0x00};\nconst size_t %s_len = %zu;\n", argv[1], n);
    fclose(in);
    return fclose(out) == 0 ? 0 : 1;
}
