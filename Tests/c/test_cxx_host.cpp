/*
 * test_cxx_host.cpp - a C++ host that has libstdc++ of its own.
 *
 * The library links the few libstdc++ functions the Swift runtime calls
 * into itself, hidden (docs/DESIGN.md, "The shared library's link").  A C++
 * host then has two copies of those functions in one process; this program
 * checks that they stay apart: the host's strings, containers, threads and
 * exceptions work before, inside and after the library's calls, including
 * an exception thrown and caught inside a callback.
 */
#include "check.h"
#include "fixtures.h"

#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Seen {
    std::map<std::string, long> per_place;
    long caught = 0;
};

int record(const dfm_token *token, void *user_data)
{
    Seen *seen = static_cast<Seen *>(user_data);

    seen->per_place[std::string(token->target_place)] += token->data.as.integer;
    // An exception that never leaves the callback.
    try {
        if (token->data.as.integer % 2 == 0)
            throw std::runtime_error("even: " + std::to_string(token->data.as.integer));
    } catch (const std::runtime_error &error) {
        if (std::string(error.what()).rfind("even: ", 0) == 0)
            seen->caught++;
    }
    return DFM_OK;
}

void test_host_keeps_its_own_cxx_library()
{
    Seen seen;
    std::vector<std::string> places = {"alpha", "beta", "gamma"};
    dfm_callbacks *set = callbacks_default(record, &seen, NULL);
    dfm_runner *runner = manual_runner(set);
    const int per_thread = 1000;

    std::vector<std::thread> producers;
    for (int p = 0; p < 3; p++) {
        producers.emplace_back([&, p] {
            for (int i = 1; i <= per_thread; i++) {
                dfm_token token = token_int(places[(size_t)p].c_str(), i);
                CHECK_STATUS(dfm_runner_dispatch(runner, &token, 1), DFM_OK);
            }
        });
    }
    for (std::thread &producer : producers)
        producer.join();
    CHECK_STATUS(dfm_process_pending(runner), DFM_OK);

    const long expected = (long)per_thread * (per_thread + 1) / 2;
    for (const std::string &place : places)
        CHECK_EQ(seen.per_place[place], expected);
    CHECK_EQ(seen.caught, 3L * per_thread / 2);

    // An exception in the host after the library's calls.
    bool thrown = false;
    try {
        throw std::out_of_range(std::string("after ") + places[0]);
    } catch (const std::logic_error &error) {
        thrown = std::string(error.what()) == "after alpha";
    }
    CHECK(thrown);

    dfm_runner_destroy(runner);
    dfm_callbacks_destroy(set);
}

} // namespace

int main()
{
    RUN_TEST(test_host_keeps_its_own_cxx_library);
    return check_summary();
}
