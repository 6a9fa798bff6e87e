/*
 * test_resident.c - what loading the library leaves in the host's resident
 * set.
 *
 * The library drops the pages of its relocation table once the loader has
 * read them (Sources/CDFMShim/src/loadtime.c).  This program finds the
 * table in the library's file (its .rela.dyn section header), never reads
 * it through the mapping, and asks /proc/self/pagemap whether each page
 * that lies wholly inside it is mapped.  A page of code that has just run
 * must read as mapped, or the check itself would prove nothing.
 */
#define _GNU_SOURCE
#include "check.h"
#include "fixtures.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

struct library {
    uintptr_t base;
    char path[4096];
};

static int find_library(struct dl_phdr_info *info, size_t size, void *data)
{
    struct library *library = data;

    (void)size;
    if (strstr(info->dlpi_name, "libdfmdispatch.so") == NULL)
        return 0;
    library->base = info->dlpi_addr;
    snprintf(library->path, sizeof library->path, "%s", info->dlpi_name);
    return 1;
}

/* The address and size of the named section, from the file on disk. */
static bool section_of(const char *path, uintptr_t base, const char *wanted,
                       uintptr_t *address, size_t *size)
{
    Elf64_Ehdr header;
    Elf64_Shdr names;
    bool found = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return false;
    if (pread(fd, &header, sizeof header, 0) == (ssize_t)sizeof header &&
        pread(fd, &names, sizeof names,
              (off_t)(header.e_shoff + header.e_shstrndx * sizeof names)) ==
            (ssize_t)sizeof names) {
        for (unsigned i = 0; i < header.e_shnum && !found; i++) {
            Elf64_Shdr section;
            char name[32] = "";

            if (pread(fd, &section, sizeof section,
                      (off_t)(header.e_shoff + i * sizeof section)) !=
                (ssize_t)sizeof section)
                break;
            if (pread(fd, name, sizeof name - 1,
                      (off_t)(names.sh_offset + section.sh_name)) <= 0)
                continue;
            if (strcmp(name, wanted) == 0) {
                *address = base + section.sh_addr;
                *size = section.sh_size;
                found = true;
            }
        }
    }
    close(fd);
    return found;
}

/* 1 when the page holding `address` is mapped, 0 when not, -1 unknown. */
static int page_present(int pagemap, uintptr_t address, uintptr_t page)
{
    uint64_t entry;
    off_t offset = (off_t)(address / page * sizeof entry);

    if (pread(pagemap, &entry, sizeof entry, offset) != (ssize_t)sizeof entry)
        return -1;
    return (int)(entry >> 63);
}

static void test_relocation_pages_are_dropped(void)
{
    struct library library = {0, ""};
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t table = 0;
    size_t size = 0;
    int pagemap;

    /* Run some of the library's code, so that its page is mapped. */
    CHECK(dfm_status_name(DFM_OK) != NULL);
    CHECK(dl_iterate_phdr(find_library, &library) == 1);
    CHECK(section_of(library.path, library.base, ".rela.dyn", &table,
                     &size));
    /* Hundreds of KB: the table of the statically linked Swift runtime. */
    CHECK(size > 16 * page);

    pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    CHECK(pagemap >= 0);
    if (pagemap < 0 || size == 0)
        return;
    CHECK_EQ(page_present(pagemap, (uintptr_t)&dfm_status_name, page), 1);

    uintptr_t first = (table + page - 1) & ~(page - 1);
    uintptr_t end = (table + size) & ~(page - 1);
    unsigned long mapped = 0;
    unsigned long unknown = 0;

    for (uintptr_t address = first; address < end; address += page) {
        int present = page_present(pagemap, address, page);

        if (present < 0)
            unknown++;
        else if (present > 0)
            mapped++;
    }
    CHECK_EQ(unknown, 0);
    CHECK_EQ(mapped, 0);
    if (mapped > 0)
        printf("%lu of %lu pages of .rela.dyn are still mapped\n", mapped,
               (unsigned long)((end - first) / page));
    close(pagemap);
}

/* The library works as before once the pages are gone. */
static int count_token(const dfm_token *token, void *user_data)
{
    (void)token;
    ++*(int *)user_data;
    return DFM_OK;
}

static void test_library_runs_after_the_drop(void)
{
    int counted = 0;
    dfm_callbacks *set = callbacks_default(count_token, &counted, NULL);
    dfm_runner *runner = direct_runner(set);
    dfm_token token = token_int("place", 3);

    CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
    CHECK_EQ(counted, 1);
    dfm_runner_destroy(runner);
    dfm_callbacks_destroy(set);
}

int main(void)
{
    RUN_TEST(test_relocation_pages_are_dropped);
    RUN_TEST(test_library_runs_after_the_drop);
    return check_summary();
}
